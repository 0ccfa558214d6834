import { SYSCTL_CATALOG } from "../../components/tuning/catalog";
import { run } from "./system";

/** Every host sysctl the lab could touch, read from the host's own namespace. */
export function hostSysctls(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(SYSCTL_CATALOG)) {
    const r = run("cat", [`/proc/sys/${key.replace(/\./g, "/")}`]);
    if (r.code === 0) out[key] = r.stdout.trim();
  }
  return out;
}

/** The lab's network namespaces that exist right now. */
export const labNamespaces = (): string[] =>
  run("ip", ["netns", "list"])
    .stdout.split("\n")
    .filter((l) => l.startsWith("edgetune-"));

/** Processes whose command line names `dir`: what the lab started from it. */
export const processesUnder = (dir: string): string => run("pgrep", ["-f", dir]).stdout.trim();
