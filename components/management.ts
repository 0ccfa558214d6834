/**
 * The management surface of a node: every endpoint edgetune adds besides the proxy's listeners
 * (HAProxy's metrics and health, the tuner's metrics). Edge nodes usually have public
 * addresses, and Kubernetes NetworkPolicy does not apply to hostNetwork pods, so these
 * endpoints protect themselves: they bind the node's internal address, never every address,
 * and answer only sources in an allowlist. One schema and one set of checks for all of them.
 */
import { BlockList, isIP } from "node:net";
import { z } from "zod";
import { show, ValidationError, type ValidationIssue } from "./validation";

/**
 * Sources allowed by default: RFC 1918, loopback and IPv6 unique-local and loopback. Not
 * 100.64.0.0/10 (carrier-grade NAT: elsewhere on a carrier's network it is other customers)
 * nor link-local; a cluster whose pod or node addresses are outside these sets `podCidr`.
 */
export const PRIVATE_CIDRS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "fc00::/7", "::1/128"] as const;

/** The environment variable the rendered bind lines read the management address from. */
export const MANAGEMENT_ADDRESS_ENV = "EDGETUNE_MANAGEMENT_ADDRESS";
/** Set instead when `address` is a CIDR: the proxy image's entrypoint (tuner.sh for the tuner) resolves it at start. */
export const MANAGEMENT_CIDR_ENV = "EDGETUNE_MANAGEMENT_CIDR";

const cidr = () => z.union([z.cidrv4(), z.cidrv6()], { error: 'allowed: a CIDR such as "10.0.0.0/8" or "fd00::/8"' });

export const managementSpec = z.strictObject({
  address: z
    .union([z.literal("hostIP"), z.ipv4(), z.ipv6(), z.cidrv4()], {
      error: 'allowed: "hostIP", an IPv4 or IPv6 address, or an IPv4 CIDR such as "10.0.0.0/8"',
    })
    .default("hostIP")
    .describe(
      "Address the management endpoints bind. `hostIP` (default): the node's internal address — on Kubernetes the pod's `status.hostIP` (downward API, env `EDGETUNE_MANAGEMENT_ADDRESS`), in the local lab the proxy namespace's address. An IPv4 CIDR: the node's first IPv4 address inside it, resolved at start by the proxy image's entrypoint and by tuner.sh (from /proc/net/fib_trie); the start fails when there is none. An address: bound as given. \"0.0.0.0\", \"::\" or a public address only with `exposePublicly`.",
    ),
  allowFrom: z
    .array(cidr())
    .default(() => [...PRIVATE_CIDRS])
    .describe(
      `Source CIDRs the management endpoints answer; others are reset on connect (HAProxy \`tcp-request connection reject\`; tuner.sh closes them unanswered). Default: ${PRIVATE_CIDRS.join(", ")}. The node's own management address is always allowed (kubelet probes come from it). Empty only with \`exposePublicly\`.`,
    ),
  podCidr: cidr()
    .optional()
    .describe(
      "The cluster's pod CIDR, allowed besides `allowFrom`: Prometheus scrapes from a pod address, which is outside the private ranges on some clusters (e.g. 100.64.0.0/10). Default: none.",
    ),
  exposePublicly: z
    .boolean()
    .default(false)
    .describe(
      "Opt in to serving metrics and health to the internet: allows a wildcard or public `address` and an empty `allowFrom` (no source check). Default: false.",
    ),
});

export type ManagementSpec = z.input<typeof managementSpec>;
export type ResolvedManagement = z.output<typeof managementSpec>;

/** Where the address comes from: a literal, or resolved where the process starts. */
export type ManagementBind = { kind: "address"; address: string } | { kind: "hostIP" } | { kind: "cidr"; cidr: string };

export function managementBind(m: ResolvedManagement): ManagementBind {
  if (m.address === "hostIP") return { kind: "hostIP" };
  if (m.address.includes("/")) return { kind: "cidr", cidr: m.address };
  return { kind: "address", address: m.address };
}

/** The sources the endpoints answer: allowFrom plus the pod CIDR; empty means any (exposePublicly only). */
export function managementSources(m: ResolvedManagement): string[] {
  return [...new Set([...m.allowFrom, ...(m.podCidr ? [m.podCidr] : [])])];
}

/** Every address of the node: never a management bind without exposePublicly. */
export const WILDCARD_ADDRESSES = ["0.0.0.0", "::"] as const;
const WILDCARDS = new Set<string>([...WILDCARD_ADDRESSES, "0:0:0:0:0:0:0:0"]);

function privateList(): BlockList {
  const list = new BlockList();
  for (const c of PRIVATE_CIDRS) {
    const [net, bits] = c.split("/");
    list.addSubnet(net, Number(bits), isIP(net) === 6 ? "ipv6" : "ipv4");
  }
  return list;
}

/** Whether an address lies inside a CIDR (false across families). */
export function inCidr(address: string, cidr: string): boolean {
  const [net, bits] = cidr.split("/");
  const family = isIP(address);
  if (family === 0 || family !== isIP(net)) return false;
  const list = new BlockList();
  const type = family === 6 ? "ipv6" : "ipv4";
  list.addSubnet(net, Number(bits), type);
  return list.check(address, type);
}

/**
 * The section with `address` replaced by a literal, where the node's addresses are known when
 * rendering (the local lab's namespaces): hostIP is `internal`, a CIDR the first of `addresses` inside it.
 */
export function withResolvedAddress(m: ResolvedManagement, internal: string, addresses: readonly string[]): ResolvedManagement {
  const b = managementBind(m);
  if (b.kind === "address") return m;
  if (b.kind === "hostIP") return { ...m, address: internal };
  const found = addresses.find((a) => inCidr(a, b.cidr));
  if (!found)
    throw new ValidationError(
      [{ path: "proxy.management.address", message: `got ${show(b.cidr)}; no address of the node is inside it (${addresses.join(", ")})` }],
      "invalid proxy spec",
    );
  return { ...m, address: found };
}

/** An address in the default private ranges (RFC 1918, loopback, unique-local). */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && privateList().check(address, family === 6 ? "ipv6" : "ipv4");
}

/**
 * The rules between fields and against the listeners. `at(key)` names a key of the section;
 * `listeners` are the public-facing binds (name, address) on the same node.
 */
export function managementIssues(
  m: ResolvedManagement,
  at: (key: string) => string,
  listeners: ReadonlyArray<{ name: string; address: string; path: string }> = [],
): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  if (!m.exposePublicly && managementSources(m).length === 0)
    issues.push({
      path: at("allowFrom"),
      message: `got []; allowed: at least one source CIDR (default ${PRIVATE_CIDRS.join(", ")}), or exposePublicly: true to answer every source`,
    });
  const bind = managementBind(m);
  if (bind.kind === "address" && !m.exposePublicly) {
    const same = listeners.find((l) => l.address === bind.address);
    if (WILDCARDS.has(bind.address))
      issues.push({
        path: at("address"),
        message: `got ${show(bind.address)}, every address of the node including its public ones; allowed: "hostIP", a private address or an IPv4 CIDR, or exposePublicly: true`,
      });
    else if (!isPrivateAddress(bind.address))
      issues.push({
        path: at("address"),
        message: `got ${show(bind.address)}, a public address${same ? ` (listener ${show(same.name)} binds it: ${same.path})` : ""}; allowed: "hostIP", a private address (${PRIVATE_CIDRS.join(", ")}) or an IPv4 CIDR, or exposePublicly: true`,
      });
  }
  if (bind.kind === "cidr" && !m.exposePublicly && !isPrivateAddress(bind.cidr.split("/")[0]))
    issues.push({
      path: at("address"),
      message: `got ${show(bind.cidr)}, a public range; allowed: "hostIP", a private address or CIDR (${PRIVATE_CIDRS.join(", ")}), or exposePublicly: true`,
    });
  return issues;
}
