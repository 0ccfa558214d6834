import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { load } from "js-yaml";
import { afterAll, describe, expect, it } from "vitest";
import {
  parseMimeParts,
  renderCloudInit,
  TUNE_SH_PATH,
  UDEV_RULE_PATH,
  UNIT_NAME,
  USER_DATA_MAX_BYTES,
} from "../../components/nodes/cloud-init";
import { resolveProfile } from "../../components/tuning/profile";
import { renderTuneSh, renderSysctlConf } from "../../components/tuning/render";
import { describeSystem, run } from "../helpers/system";

interface WriteFile {
  path: string;
  content: string;
  encoding?: string;
  permissions?: string;
}
interface CloudConfig {
  write_files: WriteFile[];
  runcmd: Array<string | string[]>;
}

// A large profile: everything the preset sets, NIC settings, limits and 1 GiB pages.
const profile = resolveProfile("edge", {
  extends: "throughput",
  limits: { nofileHard: 1048576 },
  hugepages: { pages1GiB: 4 },
  nics: [
    { match: "ens*", offloads: { gro: true, lro: false }, channels: { combined: 8 }, rps: { cpus: "0-7", flowEntriesPerQueue: 4096 } },
  ],
});
const plain = resolveProfile("plain", { sysctls: { "net.core.somaxconn": 8192 } });

function parse(cloudConfig: string): CloudConfig {
  expect(cloudConfig.startsWith("#cloud-config\n")).toBe(true);
  return load(cloudConfig) as CloudConfig;
}

describe("renderCloudInit", () => {
  it("embeds tune.sh byte-identical to the core's output, executable, in the gzipped user-data EC2 receives", () => {
    const r = renderCloudInit(profile);
    const text = gunzipSync(r.userData).toString("utf8");
    expect(text).toBe(r.cloudConfig);
    const f = parse(text).write_files.find((w) => w.path === TUNE_SH_PATH)!;
    expect(f.encoding).toBeUndefined();
    expect(f.permissions).toBe("0755");
    expect(f.content).toBe(renderTuneSh(profile));
  });

  it("ships the same document as a gzip MIME part, within EC2's limit, for EKS managed node groups", () => {
    const r = renderCloudInit(profile, { format: "mime-multipart" });
    const part = parseMimeParts(r.userData.toString("utf8")).find((p) => p.type === "application/gzip")!;
    expect(part.body).toBe(r.cloudConfig);
    expect(part.body).toMatch(/^[\x00-\x7f]*$/);
    // An ASCII tune.sh is plain text inside the gzipped part; compressing it twice would only cost bytes.
    const f = parse(part.body).write_files.find((w) => w.path === TUNE_SH_PATH)!;
    expect(f.encoding).toBeUndefined();
    expect(f.content).toBe(renderTuneSh(profile));
    expect(r.userData.length).toBeLessThanOrEqual(USER_DATA_MAX_BYTES);
  });

  it("sends a tune.sh with non-ASCII text (a profile description) as gz+b64 in the MIME part, byte for byte", () => {
    const described = resolveProfile("d", { extends: "recommended", description: "Zürich edge — proxies" });
    const r = renderCloudInit(described, { format: "mime-multipart" });
    const part = parseMimeParts(r.userData.toString("utf8")).find((p) => p.type === "application/gzip")!;
    expect(part.body).toMatch(/^[\x00-\x7f]*$/);
    const f = parse(part.body).write_files.find((w) => w.path === TUNE_SH_PATH)!;
    expect(f.encoding).toBe("gz+b64");
    expect(gunzipSync(Buffer.from(f.content, "base64")).toString("utf8")).toBe(renderTuneSh(described));
  });

  it("carries the /etc files once, inside tune.sh (its apply writes them), plus the unit; fits EC2's user-data limit", () => {
    const r = renderCloudInit(profile);
    const doc = parse(r.cloudConfig);
    expect(doc.write_files.map((w) => w.path).sort()).toEqual([TUNE_SH_PATH, UDEV_RULE_PATH, `/etc/systemd/system/${UNIT_NAME}`].sort());
    const byPath = Object.fromEntries(doc.write_files.map((w) => [w.path, w.content]));
    expect(byPath[`/etc/systemd/system/${UNIT_NAME}`]).toBe(r.unit);
    // What the files were: tune.sh writes the sysctl.d text the core renders (the kernel test runs it).
    for (const line of renderSysctlConf(profile)
      .split("\n")
      .filter((l) => /^[a-z]/.test(l)))
      expect(byPath[TUNE_SH_PATH]).toContain(line.split(" = ")[0]);
    expect(byPath[TUNE_SH_PATH]).toMatch(/\* hard nofile 1048576/);
    expect(r.userData.length).toBeLessThanOrEqual(USER_DATA_MAX_BYTES);
  });

  it("re-applies at boot (enabled oneshot) and after a NIC add/reset (udev rule for the profile's NICs)", () => {
    const r = renderCloudInit(profile);
    expect(r.unit).toMatch(/^Type=oneshot$/m);
    expect(r.unit).toMatch(new RegExp(`^ExecStart=${TUNE_SH_PATH} apply$`, "m"));
    expect(r.unit).toMatch(/^SuccessExitStatus=3$/m);
    expect(r.unit).toMatch(/^WantedBy=multi-user\.target$/m);
    expect(r.udevRule).toMatch(
      /ACTION=="add\|change", SUBSYSTEM=="net", KERNEL=="ens\*", RUN\+="\/bin\/systemctl --no-block restart edgetune-tune\.service"/,
    );
    const doc = parse(r.cloudConfig);
    expect(doc.write_files.map((w) => w.path)).toContain(UDEV_RULE_PATH);
    expect(doc.runcmd).toContainEqual(["systemctl", "enable", "--now", UNIT_NAME]);
  });

  it("puts 1 GiB huge pages on the kernel command line and reports them as needing a reboot", () => {
    const r = renderCloudInit(profile);
    expect(r.rebootRequiredFor).toEqual(expect.arrayContaining(["hugepagesz=1G", "hugepages=4"]));
    const cmd = parse(r.cloudConfig).runcmd.find((c) => typeof c === "string" && c.includes("grubby")) as string;
    expect(cmd).toContain("--args='");
    expect(cmd).toContain("hugepages=4");
    expect(renderCloudInit(plain).rebootRequiredFor).toEqual([]);
  });

  it("has no udev rule and no kernel-args command when the profile has neither", () => {
    const r = renderCloudInit(plain);
    expect(r.udevRule).toBeUndefined();
    expect(JSON.stringify(parse(r.cloudConfig).runcmd)).not.toMatch(/udevadm|grubby/);
  });

  it("wraps the cloud-config as one MIME part beside nodeadm's NodeConfig for EKS managed node groups", () => {
    const nodeadm = "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    config:\n      maxPods: 110\n";
    const r = renderCloudInit(profile, { format: "mime-multipart", nodeadmConfig: nodeadm });
    const text = r.userData.toString("utf8");
    expect(text).toMatch(/^MIME-Version: 1\.0\nContent-Type: multipart\/mixed; boundary="/);
    const parts = parseMimeParts(text);
    expect(parts.map((p) => p.type)).toEqual(["application/node.eks.aws", "application/gzip"]);
    expect(parts[0].body).toBe(nodeadm);
    expect(parts[1].body).toBe(r.cloudConfig);
  });

  it("is deterministic", () => {
    expect(renderCloudInit(profile).userData.equals(renderCloudInit(profile).userData)).toBe(true);
  });
});

describeSystem(
  "cloud-init schema (Debian's cloud-init)",
  ["cloud-init"],
  () => {
    const dir = mkdtempSync(join(tmpdir(), "edgetune-ci-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const validate = (text: string) => {
      const f = join(dir, `user-data-${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(f, text);
      return run("cloud-init", ["schema", "--config-file", f]);
    };

    it("accepts the rendered cloud-config (full and minimal profiles)", () => {
      for (const p of [profile, plain]) {
        const r = validate(gunzipSync(renderCloudInit(p).userData).toString("utf8"));
        expect(r.code, r.stdout + r.stderr).toBe(0);
        expect(r.stdout).toMatch(/Valid cloud-config/);
      }
    });

    it("accepts the part edgetune owns in the EKS multipart user-data", () => {
      const part = parseMimeParts(renderCloudInit(profile, { format: "mime-multipart" }).userData.toString("utf8")).find(
        (p) => p.type === "application/gzip",
      )!;
      const r = validate(part.body);
      expect(r.code, r.stdout + r.stderr).toBe(0);
    });

    it("is unpacked by cloud-init's own user-data processor into a text/cloud-config part (EKS multipart)", () => {
      const f = join(dir, "user-data.mime");
      const r = renderCloudInit(profile, {
        format: "mime-multipart",
        nodeadmConfig: "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\n",
      });
      writeFileSync(f, r.userData);
      // The interpreter cloud-init itself runs under, so its own modules are importable.
      // Prints each part as cloud-init's handlers will receive it: type, then the text.
      const py = `import sys\nfrom cloudinit import user_data, helpers, util\nmsg = user_data.UserDataProcessor(helpers.Paths({})).process(open(sys.argv[1], "rb").read())\nfor p in msg.walk():\n    if p.get_content_maintype() != "multipart":\n        t = util.fully_decoded_payload(p)\n        sys.stdout.write("=== " + p.get_content_type() + "\\n" + (t if isinstance(t, str) else t.decode()))\n`;
      const out = run("/usr/bin/python3", ["-c", py, f]);
      expect(out.code, out.stderr).toBe(0);
      const parts = out.stdout.split(/^=== /m).slice(1);
      expect(parts.map((p) => p.slice(0, p.indexOf("\n")))).toEqual(["application/node.eks.aws", "text/cloud-config"]);
      expect(parts[1].slice(parts[1].indexOf("\n") + 1)).toBe(r.cloudConfig);
    });

    it("rejects a broken document (the check can fail)", () => {
      const r = validate("#cloud-config\nwrite_files:\n  - path: /x\n    permissions: 644\n    encoding: bogus\n");
      expect(r.code).not.toBe(0);
    });
  },
  false,
);
