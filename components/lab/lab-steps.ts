/**
 * The lab's steps as text: pure (no Pulumi), so `edgetune render` and `edgetune lab` load them
 * without the SDK; LocalLab (local-lab.ts) wires them into a command.
 */
import { createHash } from "node:crypto";
import { renderHaproxyConfig, type ProxySpec } from "../proxy/haproxy";
import type { LocalLabOptions } from "./local-lab-spec";
import { renderTuneSh } from "../tuning/render";
import type { ResolvedProfile } from "../tuning/types";
import { managementSpec, withResolvedAddress } from "../management";
import { DEFAULT_TOPOLOGY, labAddresses, labRuntimeDir, renderBackendNginx, renderLabScript, type LabTopology } from "./topology";

/** Arguments of LocalLab: the options of its spec (local-lab-spec.ts) and what it runs. */
export type LocalLabArgs = LocalLabOptions & {
  /** The profile applied to the proxy namespace (per-namespace keys) and the host (global keys). */
  profile: ResolvedProfile;
  /** HAProxy in the proxy namespace; its servers must be the lab backend (see `labAddresses`). */
  proxy: ProxySpec;
  /**
   * This machine's CPUs and RLIMIT_NOFILE hard limit: HAProxy's nbthread, maxconn and
   * maxpipes derive from them (`readMachineFacts()` in edgetune's loader reads them).
   */
  machine: { cpus: number; nofileLimit: number };
};

/** The lab's haproxy.cfg: one rendering for `edgetune lab`, the local target and render. */
export function renderLabHaproxyConfig(
  proxy: ProxySpec,
  profile: ResolvedProfile,
  machine: { cpus: number; nofileLimit: number },
  topology: LabTopology = DEFAULT_TOPOLOGY,
): string {
  // The lab made its namespaces' addresses: its "node's internal address" is known here, not at start.
  const a = labAddresses(topology);
  const given = managementSpec.safeParse(proxy.management ?? {});
  // An invalid section is left as it is, for the renderer to report by its path.
  const management = given.success ? withResolvedAddress(given.data, a.proxy, [a.proxy, a.proxyToBackend]) : proxy.management;
  return renderHaproxyConfig(
    { ...proxy, management, runtimeDir: labRuntimeDir(topology) },
    { profile, cpus: machine.cpus, nofileLimit: machine.nofileLimit },
  );
}

/** The files the lab steps read, and the shell commands Pulumi runs: pure, so they can be rendered and tested. */
export interface LocalLabSteps {
  files: Record<string, string>;
  /** create/update: write the files, then lab.sh up, tune, proxy-start. */
  create: string;
  /** delete: write lab.sh again (it may be gone) and lab.sh down: stop, restore, tear down. */
  delete: string;
  digest: string;
}

/** The same step script `edgetune lab` runs, wrapped as create/delete commands. */
export function renderLocalLabSteps(args: Omit<LocalLabArgs, "topology"> & { labDir: string; topology?: LabTopology }): LocalLabSteps {
  const t = args.topology ?? DEFAULT_TOPOLOGY;
  const files: Record<string, string> = {
    "lab.sh": renderLabScript(t),
    "nginx.conf": renderBackendNginx(t, args.labDir),
    "tune.sh": renderTuneSh(args.profile),
    "haproxy.cfg": renderLabHaproxyConfig(args.proxy, args.profile, args.machine, t),
  };
  // Contents travel in the environment (never interpolated into the command), one variable per file.
  const write = (names: string[]) =>
    names.map((n) => `printf '%s' "$EDGETUNE_FILE_${n.replace(/\W/g, "_").toUpperCase()}" > "$LAB_DIR/${n}"`).join(" && ");
  const create = [
    `mkdir -p "$LAB_DIR"`,
    write(Object.keys(files)),
    `sh "$LAB_DIR/lab.sh" up`,
    `sh "$LAB_DIR/lab.sh" tune "$LAB_DIR/tune.sh"`,
    `sh "$LAB_DIR/lab.sh" proxy-start "$LAB_DIR/haproxy.cfg"`,
    `cat "$LAB_DIR/tune-proxy.log"`,
  ].join(" && ");
  const del = [`mkdir -p "$LAB_DIR"`, write(["lab.sh"]), `sh "$LAB_DIR/lab.sh" down`].join(" && ");
  const digest = createHash("sha256").update(JSON.stringify(files)).digest("hex").slice(0, 16);
  return { files, create, delete: del, digest };
}

/** Environment for the commands: LAB_DIR and one EDGETUNE_FILE_* variable per file. */
export function localLabEnvironment(steps: LocalLabSteps, labDir: string): Record<string, string> {
  const env: Record<string, string> = { LAB_DIR: labDir };
  for (const [name, content] of Object.entries(steps.files)) env[`EDGETUNE_FILE_${name.replace(/\W/g, "_").toUpperCase()}`] = content;
  return env;
}
