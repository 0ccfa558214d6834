import * as pulumi from "@pulumi/pulumi";
import { ValidationError, type ValidationIssue } from "./validation";

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

/**
 * A spec's plain options with some fields widened to pulumi.Input, optional ones staying
 * optional: the Args of a component whose user may compute those values from other resources.
 */
export type WithInputs<T, K extends keyof T> = Omit<T, K> & {
  [P in keyof Pick<T, K>]: pulumi.Input<NonNullable<T[P]>> | Extract<T[P], undefined>;
};

/** The keys of `input` that hold an Output or Promise now: checked when they resolve. */
export function pendingKeys<T extends object>(input: T): Array<keyof T> {
  return (Object.keys(input) as Array<keyof T>).filter(
    (k) => input[k] !== undefined && knownNow(input[k] as pulumi.Input<unknown>) === undefined,
  );
}

/**
 * Refuses an argument that was an Output and resolved to a bad value, while the deployment
 * runs. A RunError: Pulumi prints its message, no stack trace. Not a ResourceError naming the
 * component: printing that one walks the component's whole object graph (15 s measured).
 */
export function refuseResolved(issues: ValidationIssue[], what: string): never {
  throw new pulumi.RunError(new ValidationError(issues, what).message);
}
