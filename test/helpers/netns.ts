import { run, type RunResult } from "./system";

let counter = 0;

/**
 * A network namespace used as a stand-in node, with a veth pair that has
 * several queues. Created by the test, deleted by `destroy()` (call it in afterAll/afterEach).
 */
export class TestNode {
  readonly name: string;
  readonly veth: string;
  readonly peer: string;
  constructor(
    prefix = "et",
    readonly queues = 4,
  ) {
    counter++;
    const id = `${process.pid % 10000}${counter}`;
    this.name = `${prefix}-${id}`;
    this.veth = `${prefix}a${id}`.slice(0, 15);
    this.peer = `${prefix}b${id}`.slice(0, 15);
    this.must("ip", ["netns", "add", this.name], false);
    this.addVeth();
  }

  addVeth(): void {
    const q = String(this.queues);
    this.must("ip", [
      "link",
      "add",
      this.veth,
      "numrxqueues",
      q,
      "numtxqueues",
      q,
      "type",
      "veth",
      "peer",
      "name",
      this.peer,
      "numrxqueues",
      q,
      "numtxqueues",
      q,
    ]);
    this.must("ip", ["link", "set", this.veth, "up"]);
    this.must("ip", ["link", "set", this.peer, "up"]);
  }

  deleteVeth(): void {
    this.exec("ip", ["link", "del", this.veth]);
  }

  /** Runs a command inside the namespace. */
  exec(cmd: string, args: string[], env: Record<string, string> = {}, input?: string): RunResult {
    return run("ip", ["netns", "exec", this.name, "env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), cmd, ...args], { input });
  }

  must(cmd: string, args: string[], inNs = true): RunResult {
    const r = inNs ? this.exec(cmd, args) : run(cmd, args);
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
    return r;
  }

  sysctl(key: string): string {
    return this.must("cat", [`/proc/sys/${key.replace(/\./g, "/")}`])
      .stdout.trim()
      .replace(/\s+/g, " ");
  }

  setSysctl(key: string, value: string): void {
    this.must("sh", ["-c", `printf '%s\\n' "$1" > "/proc/sys/$2"`, "sh", value, key.replace(/\./g, "/")]);
  }

  destroy(): void {
    run("ip", ["netns", "del", this.name]);
  }
}
