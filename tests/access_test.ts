import assert from "node:assert/strict";
import { AccessPolicy, parseCidr } from "../lib/access.ts";

Deno.test("access rules: deny wins and a non-empty allow list must match", async (t) => {
  const cases: { allow: string[]; deny: string[]; host: string; allowed: boolean }[] = [
    { allow: [], deny: [], host: "203.0.113.9", allowed: true },
    { allow: ["127.0.0.0/8"], deny: [], host: "127.0.0.1", allowed: true },
    { allow: ["127.0.0.0/8"], deny: [], host: "10.0.0.1", allowed: false },
    { allow: [], deny: ["10.0.0.0/8"], host: "10.2.3.4", allowed: false },
    { allow: [], deny: ["10.0.0.0/8"], host: "11.0.0.1", allowed: true },
    { allow: ["10.0.0.0/8"], deny: ["10.0.0.5"], host: "10.0.0.5", allowed: false },
    { allow: ["10.0.0.0/8"], deny: ["10.0.0.5"], host: "10.0.0.6", allowed: true },
    { allow: ["::1"], deny: [], host: "::1", allowed: true },
    { allow: ["fd00::/8"], deny: [], host: "fd12::1", allowed: true },
    { allow: ["fd00::/8"], deny: [], host: "127.0.0.1", allowed: false },
    { allow: ["127.0.0.1"], deny: [], host: "::ffff:127.0.0.1", allowed: true },
    { allow: ["::ffff:127.0.0.0/104"], deny: [], host: "127.0.0.1", allowed: true },
    { allow: ["127.0.0.0/8"], deny: [], host: "not-an-ip", allowed: false },
  ];
  for (const { allow, deny, host, allowed } of cases) {
    await t.step(`allow=${allow} deny=${deny} ${host}: ${allowed}`, () => {
      const policy = new AccessPolicy(allow, deny);
      assert.equal(policy.allows(host), allowed);
      assert.equal(policy.allows(host), allowed, "cached decision");
    });
  }
});

Deno.test("CIDRs and single addresses parse; anything else is refused", () => {
  assert.equal(parseCidr("10.0.0.0/8"), "10.0.0.0/8");
  assert.equal(parseCidr("192.0.2.1"), "192.0.2.1/32");
  assert.equal(parseCidr("::1"), "::1/128");
  for (const bad of ["10.0.0.0/33", "example.com", "10.0.0/8", "", "1.2.3.4/x"]) {
    assert.throws(() => parseCidr(bad), { name: "SyntaxError", message: /Cannot parse CIDR/ });
  }
});

Deno.test("a policy without rules is open", () => {
  assert.equal(new AccessPolicy([], []).open, true);
  assert.equal(new AccessPolicy(["::1"], []).open, false);
});
