import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { labAddresses, renderLocalLabSteps, resolveProfile, type ProxySpec } from "../../components";
import { mocksSettled } from "../helpers/wait";

interface Recorded {
  type: string;
  name: string;
  inputs: any;
}
const recorded: Recorded[] = [];

beforeAll(() => {
  pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        recorded.push({ type: args.type, name: args.name, inputs: args.inputs });
        return {
          id: `${args.name}-id`,
          state: {
            ...args.inputs,
            stdout: "summary: status=applied changed=3 unchanged=1 skipped=0 failed=0 reboot_required=0 profile=p digest=sha256:x\n",
          },
        };
      },
      call: (args) => args.inputs,
    },
    "edgetune",
    "local",
    false,
  );
});

const a = labAddresses();
const proxy: ProxySpec = {
  listeners: [{ name: "web", mode: "http", port: 80, backend: "nginx" }],
  backends: [{ name: "nginx", servers: [{ name: "n1", address: a.backend, port: 8080 }] }],
};
const profile = resolveProfile("p", { extends: "recommended", ports: { listenPorts: [80, 8404, 8405] } });

const machine = { cpus: 2, nofileLimit: 20000 };

describe("LocalLab (mocks)", () => {
  it("is one command whose create sets up, tunes and starts, and whose delete tears down; contents travel in the environment", async () => {
    const { LocalLab } = await import("../../components/lab/local-lab");
    const lab = new LocalLab("lab", { profile, proxy, labDir: "/var/lib/edgetune-lab/test", machine });
    const tuning = await new Promise((res) => lab.tuning.apply(res));
    expect(tuning).toMatchObject({ status: "applied", changed: 3 });
    const cmd = recorded.find((r) => r.type === "command:local:Command")!;
    expect(cmd.inputs.create).toMatch(
      /lab\.sh" up && sh "\$LAB_DIR\/lab\.sh" tune "\$LAB_DIR\/tune\.sh" && sh "\$LAB_DIR\/lab\.sh" proxy-start/,
    );
    expect(cmd.inputs.delete).toMatch(/lab\.sh" down$/);
    const steps = renderLocalLabSteps({ profile, proxy, labDir: "/var/lib/edgetune-lab/test", machine });
    expect(cmd.inputs.environment.EDGETUNE_FILE_TUNE_SH).toBe(steps.files["tune.sh"]);
    expect(cmd.inputs.environment.LAB_DIR).toBe("/var/lib/edgetune-lab/test");
    // No file content is interpolated into the command text itself.
    expect(cmd.inputs.create).not.toContain("sysctl_item");
    expect(cmd.inputs.triggers).toEqual([steps.digest, "/var/lib/edgetune-lab/test"]);
    expect(lab.endpoints.web).toBe(`http://${a.proxy}:80`);
  });

  it("refuses a relative or traversing lab dir before registering anything", async () => {
    const { LocalLab } = await import("../../components/lab/local-lab");
    const n = recorded.length;
    expect(() => new LocalLab("bad", { profile, proxy, labDir: "/var/lib/../etc", machine })).toThrow(
      /labDir: got "\/var\/lib\/\.\.\/etc"/,
    );
    expect(() => new LocalLab("bad2", { profile, proxy, labDir: "lab", machine })).toThrow(/labDir/);
    // Registration is asynchronous: only once the mocks have settled is "nothing" a finding.
    await mocksSettled();
    expect(recorded.slice(n).filter((r) => r.name.startsWith("bad"))).toEqual([]);
  });
});
