import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { load } from "js-yaml";
import { afterAll, describe, expect, it } from "vitest";
import {
  cloudInitOptionsOf,
  LIFECYCLE_SH_PATH,
  LIFECYCLE_UNIT_NAME,
  renderInstanceRolePolicy,
  renderLifecycleScript,
  renderLifecycleUnit,
  type LifecycleGate,
} from "../../components/nodes/aws-lifecycle";
import { parseMimeParts, renderCloudInit, UNIT_NAME, USER_DATA_MAX_BYTES } from "../../components/nodes/cloud-init";
import { resolveAwsTunedNodeGroupOptions } from "../../components/nodes/aws-tuned-node-group-spec";
import { resolveProfile } from "../../components/tuning/profile";
import { describeSystem, run } from "../helpers/system";
import { parseStack } from "../../loader/stack-config";
import { renderStack } from "../../render/render";

const gate: LifecycleGate = { groupName: "edge-asg-prod", hookName: "edgetune-tuned", allowDegraded: false };
const pages = resolveProfile("pages", {
  extends: "throughput",
  hugepages: { pages1GiB: 4 },
  nics: [{ match: "ens*", offloads: { gro: true }, rps: { cpus: "0-3", flowEntriesPerQueue: 4096 } }],
});

interface Doc {
  write_files: Array<{ path: string; content: string }>;
  runcmd: Array<string | string[]>;
}
const docOf = (text: string) => load(text) as Doc;

describe("the launch gate in cloud-init", () => {
  it("ships the gate script and unit, enabled and started after the tuning unit when nothing reboots", () => {
    const r = renderCloudInit(pages, { lifecycle: gate });
    const doc = docOf(r.cloudConfig);
    const byPath = Object.fromEntries(doc.write_files.map((w) => [w.path, w.content]));
    expect(byPath[LIFECYCLE_SH_PATH]).toBe(renderLifecycleScript(gate));
    expect(byPath[`/etc/systemd/system/${LIFECYCLE_UNIT_NAME}`]).toBe(renderLifecycleUnit(gate));
    const tune = doc.runcmd.findIndex((c) => JSON.stringify(c) === JSON.stringify(["systemctl", "enable", "--now", UNIT_NAME]));
    const lifecycle = doc.runcmd.findIndex(
      (c) => JSON.stringify(c) === JSON.stringify(["systemctl", "enable", "--now", LIFECYCLE_UNIT_NAME]),
    );
    // The gate reads the tuning unit's exit: it must run after it, in this boot and at every later one.
    expect(tune).toBeGreaterThanOrEqual(0);
    expect(lifecycle).toBeGreaterThan(tune);
    expect(renderLifecycleUnit(gate)).toMatch(new RegExp(`^After=${UNIT_NAME} `, "m"));
    expect(JSON.stringify(doc.runcmd)).not.toMatch(/reboot/);
    expect(r.rebootsOnce).toBe(false);
    expect(r.rebootRequiredFor).toEqual(expect.arrayContaining(["hugepages=4"]));
  });

  it("with reboot allowed and 1 GiB pages: adds the kernel args, enables the gate without starting it, then reboots once", () => {
    const r = renderCloudInit(pages, { lifecycle: gate, reboot: "allowed" });
    const cmds = docOf(r.cloudConfig).runcmd.map((c) => (typeof c === "string" ? c : c.join(" ")));
    const args = cmds.findIndex((c) => c.includes("grubby"));
    const enable = cmds.indexOf(`systemctl enable ${LIFECYCLE_UNIT_NAME}`);
    expect(args).toBeGreaterThanOrEqual(0);
    expect(enable).toBeGreaterThan(args);
    // The reboot is last and guarded by a marker, so a second boot never reboots again.
    expect(cmds.at(-1)).toMatch(/^\[ -e \/var\/lib\/edgetune\/[\w-]+ \] \|\| \{ .*touch .* && systemctl --no-block reboot; \}$/);
    expect(cmds.filter((c) => c.includes(`--now ${LIFECYCLE_UNIT_NAME}`))).toEqual([]);
    expect(r.rebootsOnce).toBe(true);
    expect(r.rebootRequiredFor).toEqual([]);
  });

  it("does not reboot for a profile without kernel arguments, even when allowed", () => {
    const plain = resolveProfile("plain", { sysctls: { "net.core.somaxconn": 8192 } });
    const r = renderCloudInit(plain, { lifecycle: gate, reboot: "allowed" });
    expect(JSON.stringify(docOf(r.cloudConfig).runcmd)).not.toMatch(/reboot/);
    expect(r.rebootsOnce).toBe(false);
  });

  it("fits EC2's user-data limit: cloud-config with the gate and the reboot, EKS MIME (never gated: no ASG of ours) with the reboot", () => {
    expect(renderCloudInit(pages, { lifecycle: gate, reboot: "allowed" }).userData.length).toBeLessThanOrEqual(USER_DATA_MAX_BYTES);
    expect(renderCloudInit(pages, { format: "mime-multipart", reboot: "allowed" }).userData.length).toBeLessThanOrEqual(
      USER_DATA_MAX_BYTES,
    );
  });

  it("is on by default for an Auto Scaling group, off without one, and names the group from the stack", () => {
    const base = { imageId: "ami-0123456789abcdef0" };
    const asg = resolveAwsTunedNodeGroupOptions({ ...base, autoScaling: { subnetIds: ["subnet-0a1b2c3d4e5f60001"] } });
    expect(asg.value!.autoScaling!.lifecycleHook).toEqual({ enabled: true, heartbeatTimeoutSeconds: 900, allowDegraded: false });
    expect(asg.value!.reboot).toBe("never");
    expect(cloudInitOptionsOf(asg.value!, "edge", "prod").lifecycle).toEqual({
      groupName: "edge-prod",
      hookName: "edgetune-tuned",
      allowDegraded: false,
    });
    expect(cloudInitOptionsOf(resolveAwsTunedNodeGroupOptions(base).value!, "edge", "prod").lifecycle).toBeUndefined();
    const off = resolveAwsTunedNodeGroupOptions({
      ...base,
      autoScaling: { subnetIds: ["subnet-0a1b2c3d4e5f60001"], lifecycleHook: { enabled: false } },
    });
    expect(cloudInitOptionsOf(off.value!, "edge", "prod").lifecycle).toBeUndefined();
  });

  it("names the key, the value and what is allowed for a bad heartbeat, reboot policy or group name", () => {
    const r = resolveAwsTunedNodeGroupOptions({
      imageId: "ami-0123456789abcdef0",
      reboot: "sometimes",
      autoScaling: { subnetIds: ["subnet-0a1b2c3d4e5f60001"], name: "a b", lifecycleHook: { heartbeatTimeoutSeconds: 5 } },
    });
    expect(r.issues.map((i) => i.path).sort()).toEqual(
      ["autoScaling.lifecycleHook.heartbeatTimeoutSeconds", "autoScaling.name", "reboot"].sort(),
    );
    for (const i of r.issues) expect(i.message).toMatch(/allowed|expected/i);
  });

  it("allows the instance role exactly one action on exactly this group", () => {
    const p = renderInstanceRolePolicy("edge-prod", { partition: "aws", region: "eu-west-1" });
    expect(p.Statement).toEqual([
      {
        Sid: "EdgetuneLaunchGate",
        Effect: "Allow",
        Action: "autoscaling:CompleteLifecycleAction",
        Resource: "arn:aws:autoscaling:eu-west-1:*:autoScalingGroup:*:autoScalingGroupName/edge-prod",
      },
    ]);
  });
});

describeSystem(
  "cloud-init schema accepts the gated, rebooting document",
  ["cloud-init"],
  () => {
    const dir = mkdtempSync(join(tmpdir(), "edgetune-gate-ci-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    it("cloud-config and the EKS MIME part", () => {
      const texts = [
        gunzipSync(renderCloudInit(pages, { lifecycle: gate, reboot: "allowed" }).userData).toString("utf8"),
        parseMimeParts(renderCloudInit(pages, { format: "mime-multipart", reboot: "allowed" }).userData.toString("utf8")).find(
          (p) => p.type === "application/gzip",
        )!.body,
      ];
      texts.forEach((t, i) => {
        const f = join(dir, `ud-${i}.yaml`);
        writeFileSync(f, t);
        const r = run("cloud-init", ["schema", "--config-file", f]);
        expect(r.code, r.stdout + r.stderr).toBe(0);
      });
    });
  },
  false,
);

/**
 * The gate script on a stand-in host: systemctl, journalctl, curl and aws are fakes on PATH that
 * report the tuning unit's exit and record the AWS CLI call, so what the script decides is real.
 */
function stage(opts: { active: string; code: number; aws?: "ok" | "fail" | "missing"; allowDegraded?: boolean }) {
  const dir = mkdtempSync(join(tmpdir(), "edgetune-gate-"));
  const bin = join(dir, "bin");
  mkdirSync(bin);
  const tool = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  tool("systemctl", `case "$*" in *ExecMainStatus*) echo ${opts.code} ;; *ActiveState*) echo ${opts.active} ;; *) exit 1 ;; esac`);
  tool("journalctl", `echo 'changed sysctl x'; echo 'summary: status=ok changed=3 profile=edge digest=sha256:abc'`);
  tool(
    "curl",
    `case "$*" in *api/token*) echo TOKEN ;; *instance-id*) echo i-0123456789abcdef0 ;; *placement/region*) echo eu-west-1 ;; *) exit 22 ;; esac`,
  );
  for (const t of ["dirname", "mkdir", "sleep", "grep", "tail"]) {
    const path = run("sh", ["-c", `command -v ${t}`]).stdout.trim();
    if (path) tool(t, `exec ${path} "$@"`);
  }
  if (opts.aws !== "missing")
    tool("aws", `echo "$*" >> ${join(dir, "aws.log")}\n${opts.aws === "fail" ? "echo AccessDenied >&2; exit 255" : "exit 0"}`);
  const script = join(dir, "lifecycle.sh");
  writeFileSync(script, renderLifecycleScript({ ...gate, allowDegraded: opts.allowDegraded ?? false }), { mode: 0o755 });
  const env = {
    PATH: bin,
    EDGETUNE_CONSOLE: join(dir, "console"),
    EDGETUNE_LIFECYCLE_DONE: join(dir, "state", "lifecycle-done"),
    EDGETUNE_LIFECYCLE_TRIES: "2",
    EDGETUNE_LIFECYCLE_RETRY_SECONDS: "0",
  };
  const read = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8") : "");
  return {
    dir,
    script,
    env,
    console: () => read("console"),
    awsLog: () => read("aws.log"),
    done: () => existsSync(env.EDGETUNE_LIFECYCLE_DONE),
  };
}

describeSystem(
  "the gate script decides CONTINUE or ABANDON from the tuning unit's exit (dash, busybox sh)",
  ["dash", "busybox", "shellcheck"],
  () => {
    const dirs: string[] = [];
    afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
    const cases = [
      { name: "apply exit 0", active: "active", code: 0, allowDegraded: false, result: "CONTINUE", exit: 0 },
      { name: "apply exit 3, degraded not allowed", active: "active", code: 3, allowDegraded: false, result: "ABANDON", exit: 1 },
      { name: "apply exit 3, degraded allowed", active: "active", code: 3, allowDegraded: true, result: "CONTINUE", exit: 0 },
      { name: "apply failed (exit 1)", active: "failed", code: 1, allowDegraded: true, result: "ABANDON", exit: 1 },
      { name: "the tuning unit never ran", active: "inactive", code: 0, allowDegraded: false, result: "ABANDON", exit: 1 },
    ];
    // PATH holds only the fakes, so the shells are run by their absolute paths.
    const abs = (t: string) => run("sh", ["-c", `command -v ${t}`]).stdout.trim();
    const dash = abs("dash");
    for (const shell of [[dash], [abs("busybox"), "sh"]])
      for (const c of cases)
        it(`${shell.join(" ").replace(/^\/\S*\//, "")}: ${c.name} → ${c.result}`, () => {
          const s = stage(c);
          dirs.push(s.dir);
          const r = run(shell[0], [...shell.slice(1), s.script], { env: s.env });
          expect(r.code, r.stderr).toBe(c.exit);
          expect(s.awsLog().trim()).toBe(
            `autoscaling complete-lifecycle-action --region eu-west-1 --auto-scaling-group-name edge-asg-prod --lifecycle-hook-name edgetune-tuned --instance-id i-0123456789abcdef0 --lifecycle-action-result ${c.result}`,
          );
          expect(s.console()).toMatch(new RegExp(`result=${c.result} tune_exit=${c.code} .*summary: status=ok`));
          expect(s.done()).toBe(true);
        });

    it("without the AWS CLI: a clear console error, no completion recorded (the hook times out to ABANDON)", () => {
      const s = stage({ active: "active", code: 0, aws: "missing" });
      dirs.push(s.dir);
      const r = run(dash, [s.script], { env: s.env });
      expect(r.code).toBe(1);
      expect(s.console()).toMatch(/ERROR: no AWS CLI \(aws\) on this AMI/);
      expect(s.done()).toBe(false);
    });

    it("retries a refused call, then gives up naming the default result, and leaves no done marker", () => {
      const s = stage({ active: "active", code: 0, aws: "fail" });
      dirs.push(s.dir);
      const r = run(dash, [s.script], { env: s.env });
      expect(r.code).toBe(1);
      expect(s.awsLog().trim().split("\n")).toHaveLength(2);
      expect(s.console()).toMatch(/failed 2 times; the group applies its default result \(ABANDON\)/);
      expect(s.done()).toBe(false);
    });

    it("is shellcheck-clean POSIX sh", () => {
      const s = stage({ active: "active", code: 0 });
      dirs.push(s.dir);
      const sc = run("shellcheck", ["-s", "sh", "-S", "style", s.script]);
      expect(sc.stdout + sc.stderr).toBe("");
    });
  },
  false,
);

describe("render shows the gate and the reboot policy", () => {
  const stackWith = (aws: Record<string, unknown>) =>
    renderStack(
      parseStack("prod", {
        profiles: { big: { extends: "throughput", hugepages: { pages1GiB: 2 } } },
        nodeGroups: [
          {
            name: "edge",
            target: "aws",
            profile: "big",
            aws: { imageId: "ami-0123456789abcdef0", autoScaling: { subnetIds: ["subnet-0a1b2c3d4e5f60001"] }, ...aws },
          },
        ],
      }),
    );

  it("reboot never: PLAN.md warns that the pages need a reboot nobody performs; the user-data does not reboot", () => {
    const files = stackWith({});
    expect(files["PLAN.md"]).toMatch(/Warning: kernel arguments .*hugepages=2.* need a reboot that nobody performs \(reboot: never\)/);
    expect(files["edge/cloud-init/user-data"]).not.toMatch(/systemctl --no-block reboot/);
    expect(JSON.parse(files["edge/aws/lifecycle-hook.json"])).toMatchObject({ name: "edgetune-tuned", defaultResult: "ABANDON" });
  });

  it("reboot allowed: PLAN.md says the gate reports after the post-reboot apply; the user-data reboots once", () => {
    const files = stackWith({ reboot: "allowed" });
    expect(files["PLAN.md"]).toMatch(/Reboot: allowed; .*reboots once, the launch gate reports after the post-reboot apply/);
    expect(files["PLAN.md"]).not.toMatch(/nobody performs/);
    expect(files["edge/cloud-init/user-data"]).toMatch(/systemctl --no-block reboot/);
  });

  it("names the user's instance profile as the one that needs the policy", () => {
    const files = stackWith({ iamInstanceProfileArn: "arn:aws:iam::123456789012:instance-profile/edge" });
    expect(files["PLAN.md"]).toMatch(
      /Instance profile: given \(iamInstanceProfileArn\); its role must allow aws\/instance-role-policy\.json/,
    );
  });
});

describeSystem(
  "the reboot-once command reboots on the first boot only",
  ["dash"],
  () => {
    it("calls systemctl reboot once, then never again (the marker survives the reboot)", () => {
      const dir = mkdtempSync(join(tmpdir(), "edgetune-reboot-"));
      try {
        const bin = join(dir, "bin");
        mkdirSync(bin);
        writeFileSync(join(bin, "systemctl"), `#!/bin/sh\necho "$*" >> ${join(dir, "calls")}\n`, { mode: 0o755 });
        const cmds = docOf(renderCloudInit(pages, { lifecycle: gate, reboot: "allowed" }).cloudConfig).runcmd;
        // The rendered command, with its state directory moved under the test's directory.
        const cmd = (cmds.at(-1) as string).replaceAll("/var/lib/edgetune", join(dir, "state"));
        const env = { PATH: `${bin}:${process.env.PATH}` };
        for (let boot = 0; boot < 3; boot++) expect(run("dash", ["-c", cmd], { env }).code).toBe(0);
        expect(readFileSync(join(dir, "calls"), "utf8")).toBe("--no-block reboot\n");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
  false,
);
