import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { describeSystem, run, type RunResult } from "./system";

const ROOT = join(__dirname, "..", "..");
export const BUILD_IMAGES = join(ROOT, "scripts", "build-images.sh");
export const ROOTFS_RUN = join(ROOT, "scripts", "rootfs-run.sh");
/** Where the tests keep the images' exported root filesystems between runs (build-images.sh skips what is current). */
export const ROOTFS_DIR = process.env.EDGETUNE_IMAGE_ROOTFS ?? "/var/tmp/edgetune-images/rootfs";
export type ImageTarget = "proxy" | "tuner" | "loadgen";

/** What building and running the images needs: skipped without it locally, a failure under CI (describeSystem). */
export const IMAGE_TOOLS = ["buildah", "mmdebstrap", "ip", "unshare", "chroot"];

export function describeImages(name: string, body: () => void): void {
  describeSystem(name, IMAGE_TOOLS, body);
}

/** Builds (or finds current) the images with scripts/build-images.sh and exports their root filesystems. */
export function buildImages(targets: ImageTarget[]): Record<ImageTarget, string> {
  const r = run(BUILD_IMAGES, ["--only", targets.join(","), "--rootfs", ROOTFS_DIR], { timeout: 900_000 });
  if (r.code !== 0) throw new Error(`build-images.sh failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return { proxy: join(ROOTFS_DIR, "proxy"), tuner: join(ROOTFS_DIR, "tuner"), loadgen: join(ROOTFS_DIR, "loadgen") };
}

export interface InRootfs {
  /** host path → path inside (a file or a directory). */
  binds?: Record<string, string>;
  env?: Record<string, string>;
  /** "uid:gid"; default root. */
  user?: string;
  /** A PID namespace of its own: all it started dies with it. */
  pidns?: boolean;
}

/** argv that runs `cmd` inside the root filesystem, in network namespace `ns` (scripts/rootfs-run.sh). */
export function rootfsArgv(ns: string, rootfs: string, cmd: string[], o: InRootfs = {}): string[] {
  return [
    "netns",
    "exec",
    ns,
    ROOTFS_RUN,
    ...Object.entries(o.binds ?? {}).flatMap(([src, dst]) => ["-b", `${src}:${dst}`]),
    ...Object.entries(o.env ?? {}).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
    ...(o.user ? ["-u", o.user] : []),
    ...(o.pidns ? ["-p"] : []),
    rootfs,
    ...cmd,
  ];
}

export function runInRootfs(ns: string, rootfs: string, cmd: string[], o: InRootfs = {}, timeout = 120_000): RunResult {
  return run("ip", rootfsArgv(ns, rootfs, cmd, o), { timeout });
}

/** A long-running process inside the root filesystem; its output collects in `log()`. Stop it with `stopProcess`. */
export function startInRootfs(ns: string, rootfs: string, cmd: string[], o: InRootfs = {}): { child: ChildProcess; log: () => string } {
  let out = "";
  const child = spawn("ip", rootfsArgv(ns, rootfs, cmd, o), { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  return { child, log: () => out };
}

/** Stops a process this test started, by its own PID, and waits for it. */
export async function stopProcess(child: ChildProcess | undefined, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

let counter = 0;
/** A bare network namespace with loopback up; `del()` removes it. */
export function netns(prefix: string): { name: string; del: () => void } {
  const name = `${prefix}-${process.pid % 10000}-${++counter}`;
  const add = run("ip", ["netns", "add", name]);
  if (add.code !== 0) throw new Error(`ip netns add ${name}: ${add.stderr}`);
  run("ip", ["-n", name, "link", "set", "lo", "up"]);
  return { name, del: () => void run("ip", ["netns", "del", name]) };
}

export async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 15_000, log?: () => string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${log ? `:\n${log()}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
