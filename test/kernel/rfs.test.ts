import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { renderTuneSh, resolveProfile } from "../../components";
import { TestNode } from "../helpers/netns";
import { describeSystem, run } from "../helpers/system";

const GLOBAL = "/proc/sys/net/core/rps_sock_flow_entries";
const QUEUES = 4;

// rps_sock_flow_entries exists only in the host's namespace, so the NIC under test is the host end of
// a multi-queue veth whose peer lives in a test namespace; tune.sh runs on the host like the tuner does.
describeSystem("RFS on a real kernel: rps_flow_cnt on every rx queue and the global flow table", ["ip", "sh"], () => {
  let node: TestNode;
  let work: string;
  let saved: string;
  const dev = `etrfs${process.pid % 10000}`;
  const queue = (q: number, f: string) => readFileSync(`/sys/class/net/${dev}/queues/rx-${q}/${f}`, "utf8").trim();

  beforeAll(() => {
    saved = readFileSync(GLOBAL, "utf8").trim();
    work = mkdtempSync(join(tmpdir(), "edgetune-rfs-"));
    node = new TestNode("erf", 1);
    const q = String(QUEUES);
    const add = run("ip", [
      "link",
      "add",
      dev,
      "numrxqueues",
      q,
      "numtxqueues",
      q,
      "type",
      "veth",
      "peer",
      "name",
      `${dev}p`,
      "netns",
      node.name,
    ]);
    expect(add.code, add.stderr).toBe(0);
    // Starts below the derived size, so apply must raise it.
    writeFileSync(GLOBAL, "0\n");
  });
  afterAll(() => {
    run("ip", ["link", "del", dev]);
    node?.destroy();
    writeFileSync(GLOBAL, `${saved}\n`);
    rmSync(work, { recursive: true, force: true });
  });

  it("apply sets rps_flow_cnt per queue and rps_sock_flow_entries; verify passes; restore puts both back", () => {
    const profile = resolveProfile("rfs", { nics: [{ match: dev, rps: { cpus: "0", flowEntriesPerQueue: 2048 } }] });
    const script = join(work, "tune.sh");
    writeFileSync(script, renderTuneSh(profile));
    const env = { ...process.env, STATE_DIR: join(work, "state"), ETC_ROOT: join(work, "etc"), EDGETUNE_SCOPE: "all" };
    const apply = run("sh", [script, "apply"], { env });
    expect(apply.code, apply.stdout).toBe(0);
    expect(apply.stdout).toMatch(/^changed\s+sysctl\s+net\.core\.rps_sock_flow_entries 0 -> 32768$/m);
    for (let q = 0; q < QUEUES; q++) {
      expect(queue(q, "rps_flow_cnt"), `rx-${q}`).toBe("2048");
      expect(queue(q, "rps_cpus").replace(/[,0]/g, ""), `rx-${q}`).toBe("1");
    }
    // The global table is what makes RFS steer at all: the kernel holds it at a power of two.
    expect(readFileSync(GLOBAL, "utf8").trim()).toBe("32768");
    expect(readFileSync(join(work, "etc/sysctl.d/99-zz-edgetune.conf"), "utf8")).toMatch(/^net\.core\.rps_sock_flow_entries = 32768$/m);
    expect(run("sh", [script, "verify"], { env }).code).toBe(0);

    const restore = run("sh", [script, "restore"], { env });
    expect(restore.code, restore.stdout).toBe(0);
    expect(readFileSync(GLOBAL, "utf8").trim()).toBe("0");
    for (let q = 0; q < QUEUES; q++) expect(queue(q, "rps_flow_cnt")).toBe("0");
  });
});
