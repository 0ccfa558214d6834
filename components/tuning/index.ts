export * from "./catalog";
export * from "./types";
export * from "./presets";
export * from "./profile";
export * from "./ports";
export * from "./bdp";
export * from "./cpus";
export * from "./render";
