/** edgetune's public API: the tuning profile model, presets, validation and renderers. */
export * from "./tuning";
