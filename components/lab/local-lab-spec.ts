/**
 * The spec of LocalLab (the `local` target) and its topology: the one place their defaults,
 * bounds and descriptions are written; the component, `edgetune lab`, the stack's `local`
 * section and the reference use it.
 */
import { z } from "zod";
import { formatPath, grammar, resolveWith, type PathSegment, type ValidationIssue } from "../validation";

export const labTopologySpec = z
  .strictObject({
    prefix: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,30}$/, 'allowed: lowercase letters, digits and "-", starting with a letter, at most 31 characters')
      .default("edgetune")
      .describe("Namespace name prefix: `<prefix>-client`, `<prefix>-proxy`, `<prefix>-backend`."),
    queues: grammar.int(1, 64).default(4).describe("rx/tx queues per veth, so RPS/XPS have something to spread."),
    subnet: grammar
      .int(0, 255)
      .default(231)
      .describe("Second octet of the lab's 10.x.0.0/16: its addresses exist only inside the lab's namespaces."),
    httpPort: grammar.port().default(8080).describe("Backend HTTP port (nginx)."),
    iperfPort: grammar.port().default(5201).describe("Backend iperf3 port."),
    bodyBytes: grammar
      .int(1, 1 << 20)
      .default(512)
      .describe("Size of the backend's static response body, bytes."),
  })
  .superRefine((t, ctx) => {
    if (t.httpPort === t.iperfPort) ctx.addIssue({ code: "custom", path: ["iperfPort"], message: "allowed: a port other than httpPort" });
  });

export type LabTopology = z.output<typeof labTopologySpec>;
export const DEFAULT_TOPOLOGY: LabTopology = labTopologySpec.parse({});

export const localLabShape = {
  labDir: grammar
    .absolutePath()
    .optional()
    .describe("Absolute directory for the lab's files, PIDs and recorded originals. Default: /var/lib/edgetune-lab/<group name>."),
  topology: labTopologySpec.prefault({}).describe("Namespace names, queues, addresses and ports of the lab."),
};
export const localLabSpec = z.strictObject(localLabShape);
export type LocalLabOptions = z.input<typeof localLabSpec>;

/** The default lab directory of a local group or LocalLab named `name`. */
export const defaultLabDir = (name: string): string => `/var/lib/edgetune-lab/${name}`;

/** Resolves LocalLab's options: labDir defaults by name. */
export function resolveLocalLabOptions(
  name: string,
  input: unknown,
  prefix: readonly PathSegment[] = [],
): { value: { labDir: string; topology: LabTopology }; issues: [] } | { value?: undefined; issues: ValidationIssue[] } {
  const r = resolveWith(localLabSpec, input, prefix);
  if (!r.value) return r;
  const labDir = r.value.labDir ?? defaultLabDir(name);
  if (!grammar.absolutePath().safeParse(labDir).success)
    return {
      issues: [
        {
          path: formatPath([...prefix, "labDir"]),
          message: `got ${JSON.stringify(labDir)} (from the name); allowed: an absolute path without ".."`,
        },
      ],
    };
  return { value: { labDir, topology: r.value.topology }, issues: [] };
}
