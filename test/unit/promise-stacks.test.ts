import { afterEach, describe, expect, it, vi } from "vitest";
import { withoutPromiseStacks } from "../../components/promise-stacks";

describe("withoutPromiseStacks", () => {
  afterEach(() => vi.unstubAllEnvs());

  it("captures no stack frames inside, and puts the limit back after", () => {
    const before = Error.stackTraceLimit;
    const inside = withoutPromiseStacks(() => new Error("x").stack);
    expect(inside).toBe("Error: x");
    expect(Error.stackTraceLimit).toBe(before);
    expect(new Error("y").stack).toMatch(/\n\s+at /);
  });

  it("puts the limit back when the registration throws", () => {
    const before = Error.stackTraceLimit;
    expect(() =>
      withoutPromiseStacks(() => {
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(Error.stackTraceLimit).toBe(before);
  });

  it("keeps the stacks when PULUMI_DEBUG_PROMISE_LEAKS asks for them", () => {
    vi.stubEnv("PULUMI_DEBUG_PROMISE_LEAKS", "1");
    expect(withoutPromiseStacks(() => new Error("x").stack)).toMatch(/\n\s+at /);
  });
});
