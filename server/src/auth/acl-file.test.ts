import { describe, expect, it } from "vitest";
import { isTributaryError, type TributaryError } from "../errors.ts";
import { parseAcl } from "./acl-file.ts";
import { aclPolicy } from "./acl-policy.ts";
import { createIdentity } from "./identity.ts";
import { PolicyAuthorizer } from "./policy-authorizer.ts";

const ACL = `# Mosquitto-style ACL
topic read public/#
topic   write   anon/inbox

user alice
topic readwrite sensors/alice/#
topic deny sensors/alice/secret
topic dashboards/#
\tuser bob
topic read sensors/#

# patterns apply to everyone, wherever they are written
pattern write devices/%c/status
pattern readwrite users/%u/#
pattern read clients/%c/%u
user alice
topic read extra/#
`;

const rules = parseAcl(ACL, "/etc/tributary/acl");

function can(username: string | null, clientId: string | null) {
  const policy = aclPolicy(rules, username, clientId);
  const authz = new PolicyAuthorizer(() => policy);
  const id = createIdentity({ kind: username === null ? "anonymous" : "password", subject: username, clientId, expiresAt: null });
  return {
    pub: (t: string) => authz.canPublish(id, t),
    sub: (f: string) => authz.canSubscribe(id, f),
    admin: () => authz.isAdmin(id),
  };
}

describe("ACL file parsing", () => {
  it("reads sections, access words, patterns and merges a user's repeated sections", () => {
    expect(rules.anonymous).toEqual([
      { access: "read", pattern: "public/#", line: 2 },
      { access: "write", pattern: "anon/inbox", line: 3 },
    ]);
    expect(rules.users.get("alice")?.map((e) => `${e.access} ${e.pattern}`)).toEqual([
      "readwrite sensors/alice/#",
      "deny sensors/alice/secret",
      "readwrite dashboards/#",
      "read extra/#",
    ]);
    expect(rules.users.get("bob")?.map((e) => e.pattern)).toEqual(["sensors/#"]);
    expect(rules.patterns.map((e) => e.pattern)).toEqual(["devices/%c/status", "users/%u/#", "clients/%c/%u"]);
    expect(rules.warnings).toEqual([]);
  });

  it("keeps spaces inside a user name and a topic, as Mosquitto does", () => {
    const r = parseAcl("user Jane Doe\ntopic read my topic/#\n", "acl");
    expect(r.users.get("Jane Doe")).toEqual([{ access: "read", pattern: "my topic/#", line: 2 }]);
  });

  it("reports every bad line with file and line number", () => {
    let err: TributaryError | undefined;
    try {
      parseAcl("topic read\nuser\ntopic rw a/b\ntopc read x\npattern read a/#/b\ntopic\nuser x\ntopic ok/+\n", "/etc/acl");
    } catch (e) {
      err = e as TributaryError;
    }
    expect(isTributaryError(err, "INVALID_CONFIG")).toBe(true);
    expect(err!.message).toContain("invalid ACL file /etc/acl (6 problems)");
    expect(err!.context.problems).toEqual([
      '/etc/acl:1: "topic read" needs a topic pattern after the access',
      '/etc/acl:2: "user" needs a user name',
      '/etc/acl:3: unknown access "rw"; expected read, write, readwrite or deny before the pattern',
      expect.stringMatching(/^\/etc\/acl:4: unknown keyword "topc"; expected "user <name>"/),
      expect.stringMatching(/^\/etc\/acl:5: "a\/#\/b" is not a valid MQTT topic pattern/),
      '/etc/acl:6: "topic" needs a topic pattern',
    ]);
  });

  it("warns when %c/%u appear in a topic line (not substituted there)", () => {
    expect(parseAcl("user a\ntopic read x/%u\n", "acl").warnings).toEqual([expect.stringMatching(/^acl:2: %c\/%u are substituted only in "pattern" lines/)]);
  });
});

describe("ACL policy", () => {
  it("gives anonymous clients the section before the first user line", () => {
    const anon = can(null, "c1");
    expect(anon.sub("public/news")).toBe(true);
    expect(anon.pub("public/news")).toBe(false);
    expect(anon.pub("anon/inbox")).toBe(true);
    expect(anon.sub("sensors/#")).toBe(false);
  });

  it("gives a user its section: read, write, readwrite (also the default) and deny", () => {
    const alice = can("alice", "c1");
    expect(alice.pub("sensors/alice/temp")).toBe(true);
    expect(alice.sub("sensors/alice/temp")).toBe(true);
    expect(alice.sub("sensors/alice/+/x")).toBe(true);
    expect(alice.pub("sensors/alice/secret")).toBe(false);
    expect(alice.sub("sensors/alice/#")).toBe(false); // could reach the denied topic
    expect(alice.sub("sensors/alice/+")).toBe(false); // so could this one
    expect(alice.pub("dashboards/main")).toBe(true);
    expect(alice.sub("extra/x")).toBe(true);
    expect(alice.pub("extra/x")).toBe(false);
    expect(alice.sub("public/#")).toBe(false); // the anonymous section is not a user's
    const bob = can("bob", "c2");
    expect(bob.sub("sensors/+/temp")).toBe(true);
    expect(bob.pub("sensors/bob/temp")).toBe(false);
    expect(bob.admin()).toBe(false);
  });

  it("substitutes %c and %u in pattern lines for every client", () => {
    const bob = can("bob", "dev-9");
    expect(bob.pub("devices/dev-9/status")).toBe(true);
    expect(bob.pub("devices/dev-8/status")).toBe(false);
    expect(bob.sub("users/bob/#")).toBe(true);
    expect(bob.pub("users/alice/x")).toBe(false);
    expect(bob.sub("clients/dev-9/bob")).toBe(true);
    const stranger = can("zed", "z1"); // no section: patterns only
    expect(stranger.pub("devices/z1/status")).toBe(true);
    expect(stranger.sub("sensors/#")).toBe(false);
  });

  it("skips %u patterns for clients without user name, and %c ones without client id", () => {
    const anon = can(null, "c1");
    expect(anon.pub("devices/c1/status")).toBe(true);
    expect(anon.pub("users/%u/x")).toBe(false);
    expect(anon.sub("clients/c1/+")).toBe(false);
    const noClient = can("bob", null);
    expect(noClient.pub("users/bob/x")).toBe(true);
    expect(noClient.pub("devices/%c/status")).toBe(false);
  });

  it("denies everything to a client whose substituted id or name holds + # or /", () => {
    for (const [user, client] of [["bob", "#"], ["bob", "a/b"], ["b+b", "c1"]] as const) {
      const c = can(user, client);
      expect(c.sub("sensors/#"), `${user} ${client}`).toBe(false);
      expect(c.pub("devices/x/status"), `${user} ${client}`).toBe(false);
    }
  });
});
