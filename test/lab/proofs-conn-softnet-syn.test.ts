import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import type { LabReport } from "../../components/lab/analysis";
import { hostSysctls, labNamespaces, processesUnder } from "../helpers/lab";
import { describeSystem } from "../helpers/system";

const ROOT = join(__dirname, "..", "..");
const CLI = join(ROOT, "bin", "edgetune.js");

describeSystem(
  "edgetune lab proofs: conn-hold, softnet, syn-flood (quick)",
  ["ip", "haproxy", "nginx", "curl", "nstat", "hping3", "nft", "taskset"],
  () => {
    it("runs each for baseline and tuned, reports its counters, and leaves the machine as it was", () => {
      expect(labNamespaces(), "no lab may be running before the test").toEqual([]);
      const before = hostSysctls();
      const dir = mkdtempSync(join(tmpdir(), "edgetune-proofs-a-"));
      const r = spawnSync(
        "node",
        [CLI, "lab", "--quick", "--scenarios", "conn-hold,softnet,syn-flood", "--variants", "none", "--json", "--report-dir", dir],
        { cwd: ROOT, encoding: "utf8", timeout: 300_000, maxBuffer: 64 << 20 },
      );
      expect(r.status, r.stderr.slice(-3000)).toBe(0);
      const report = JSON.parse(r.stdout) as LabReport;
      const one = (scenario: string, profile: string) => {
        const rs = report.results.filter((x) => x.scenario === scenario && x.profile === profile);
        expect(rs.length, `${scenario}/${profile}`).toBe(1);
        expect(rs[0].tool).toBe("lab-driver");
        return rs[0].measures!;
      };

      for (const profile of ["baseline", "tuned"]) {
        // conn-hold goes past HAProxy's maxconn: what is held stops exactly there, the rest fail.
        const ch = one("conn-hold", profile);
        expect(ch.heldMax).toBe(ch.haproxyMaxconn);
        expect(ch.targetConnections).toBeGreaterThan(ch.haproxyMaxconn);
        expect(ch.failedConnections).toBe(ch.targetConnections - ch.heldMax);
        expect(ch.bytesPerConnection).toBe(ch.haproxyRssBytesPerConnection + ch.kernelBytesPerConnection);
        expect(ch.kernelBytesPerSocket).toBeGreaterThan(0);

        // syn-flood: the flood went out, the legitimate client was probed, the queue sizes are the profile's.
        const sf = one("syn-flood", profile);
        expect(sf.floodSynsSent).toBeGreaterThan(0);
        expect(sf.legitAttempts).toBeGreaterThan(0);
        expect(sf.legitAnswered).toBeLessThanOrEqual(sf.legitAttempts);
      }
      expect(one("syn-flood", "tuned").tcpMaxSynBacklog).toBe(65535);
      // 30,000 SYNs overflow the baseline's queue (the listen backlog, 4,096 per shard) into
      // syncookies; the tuned queue (65,535) holds them all.
      expect(one("syn-flood", "baseline").reqQueueFullCookies).toBeGreaterThan(0);
      expect(one("syn-flood", "tuned").reqQueueFullCookies).toBe(0);
      expect(one("syn-flood", "baseline").tcpMaxSynBacklog).not.toBe(65535);
      // softnet ran with the host's netdev_max_backlog at each profile's value.
      expect(one("softnet", "baseline").netdevMaxBacklog).toBe(1000);
      expect(one("softnet", "tuned").netdevMaxBacklog).toBe(65535);
      expect(one("softnet", "baseline").softnetProcessed).toBeGreaterThan(0);

      // Compared in the report, results.json and the terminal alike.
      expect(report.proofs?.map((p) => p.scenario)).toEqual(["conn-hold", "softnet", "syn-flood"]);
      for (const p of report.proofs ?? []) expect(p.verdict).not.toBe("");
      expect(readFileSync(report.files.markdown, "utf8")).toMatch(/### Proof scenarios[\s\S]*#### conn-hold[\s\S]*\*\*Verdict:\*\*/);
      expect(JSON.parse(readFileSync(report.files.json, "utf8")).proofs.length).toBe(3);

      expect(labNamespaces()).toEqual([]);
      expect(processesUnder(dir)).toBe("");
      // netdev_max_backlog among them: set for softnet's baseline run, put back after.
      expect(hostSysctls()).toEqual(before);
    }, 300_000);
  },
);
