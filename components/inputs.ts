import * as pulumi from "@pulumi/pulumi";

/**
 * A component argument's value now, when it holds no Output or Promise anywhere; undefined
 * otherwise. Known values are validated while the component is constructed (a bad value
 * registers nothing); values computed from other resources are validated once they resolve.
 */
export function knownNow<T>(value: pulumi.Input<T> | undefined): T | undefined {
  return holdsPending(value) ? undefined : (value as T | undefined);
}

function holdsPending(v: unknown): boolean {
  if (pulumi.Output.isInstance(v) || v instanceof Promise) return true;
  if (Array.isArray(v)) return v.some(holdsPending);
  if (v && typeof v === "object") return Object.values(v).some(holdsPending);
  return false;
}
