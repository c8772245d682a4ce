/**
 * `tributary token create` and `tributary passwd` as child processes: the minted token and
 * the written password file are checked with the auth layer a node uses (AuthService),
 * and outputs and exit codes follow docs/cli.md.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { AuthService } from "../server/src/auth/auth-service.ts";
import type { AuthConfig } from "../server/src/auth/auth-service.ts";

const BIN = fileURLToPath(new URL("../server/bin/tributary.mjs", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "tributary-cli-auth-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET_FILE = join(dir, "jwt.secret");
writeFileSync(SECRET_FILE, "0123456789abcdef0123456789abcdef-cli-test\n");
const NO_AUTH: AuthConfig = { jwt: { secretFile: null, publicKeyFile: null, jwksFile: null, audience: null, issuer: null }, passwordFile: null, aclFile: null, allowAnonymous: false };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], input?: string, env: Record<string, string> = {}): Promise<Run> {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("TRIBUTARY_")) clean[k] = v;
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...clean, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input ?? "");
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function service(auth: Partial<Omit<AuthConfig, "jwt">> & { jwt?: Partial<AuthConfig["jwt"]> }): Promise<AuthService> {
  return AuthService.open({ ...NO_AUTH, ...auth, jwt: { ...NO_AUTH.jwt, ...auth.jwt } }, { watch: false });
}

describe("tributary token create", () => {
  it("prints only a token that the node's auth layer accepts with the requested permissions", async () => {
    const r = await run(["token", "create", "--sub", "dash-7", "--pub", "commands/#", "--subscribe", "sensor-data/#", "--subscribe", "alerts/+", "--group", "dashboards-*", "--presence", "--exp", "15m", "--secret-file", SECRET_FILE]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/);

    const auth = await service({ jwt: { secretFile: SECRET_FILE } });
    const id = await auth.authenticateToken(r.stdout.trim(), "tab-1");
    expect(id).toMatchObject({ kind: "jwt", subject: "dash-7" });
    const left = auth.msUntilExpiry(id)!;
    expect(left).toBeGreaterThan(14 * 60_000);
    expect(left).toBeLessThanOrEqual(15 * 60_000);
    const can = auth.authorizer;
    expect(can.canPublish(id, "commands/x/y")).toBe(true);
    expect(can.canPublish(id, "sensor-data/x")).toBe(false);
    expect(can.canConsume(id, "sensor-data")).toBe(true);
    expect(can.canSubscribe(id, "alerts/fire")).toBe(true);
    expect(can.canSubscribe(id, "alerts/#")).toBe(false);
    expect(can.canJoinGroup(id, "dashboards-eu")).toBe(true);
    expect(can.canPresence(id, "sensor-data")).toBe(true);
    expect(can.isAdmin(id)).toBe(false);
    auth.close();
  });

  it("takes the secret, audience and issuer from the node's config file, and mints admin tokens", async () => {
    const config = join(dir, "node.json");
    writeFileSync(config, JSON.stringify({ auth: { jwt: { secretFile: SECRET_FILE, audience: "tributary", issuer: "ops" } } }));
    const r = await run(["token", "create", "--sub", "ops-1", "--admin", "--alg", "HS512", "--config", config]);
    expect(r.code).toBe(0);
    const auth = await service({ jwt: { secretFile: SECRET_FILE, audience: "tributary", issuer: "ops" } });
    const id = await auth.authenticateToken(r.stdout.trim());
    expect(auth.authorizer.isAdmin(id)).toBe(true);
    expect(auth.authorizer.canManageTopic(id, "orders")).toBe(true);
    auth.close();
    // a node requiring another audience refuses it
    const other = await service({ jwt: { secretFile: SECRET_FILE, audience: "elsewhere" } });
    await expect(other.authenticateToken(r.stdout.trim())).rejects.toMatchObject({ code: "UNAUTHORIZED", context: { reason: "aud" } });
    other.close();
  });

  it("exits 2 with a message for a bad pattern, a missing secret or a bad lifetime", async () => {
    const bad = await run(["token", "create", "--sub", "a", "--pub", "a/#/b", "--secret-file", SECRET_FILE]);
    expect(bad).toMatchObject({ code: 2, stdout: "" });
    expect(bad.stderr).toContain('"a/#/b" is not a valid MQTT topic pattern');
    const noSecret = await run(["token", "create", "--sub", "a"]);
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toContain("--secret-file");
    const lifetime = await run(["token", "create", "--sub", "a", "--exp", "soon", "--secret-file", SECRET_FILE]);
    expect(lifetime.code).toBe(2);
  });
});

describe("tributary passwd", () => {
  it("adds and updates users from stdin or --password, keeping other lines, mode 0600", async () => {
    const file = join(dir, "passwd");
    const added = await run(["passwd", file, "alice"], "hunter2\n");
    expect(added).toMatchObject({ code: 0, stdout: "" });
    expect(added.stderr).toBe(`added user alice to ${file}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    writeFileSync(file, `# devices\n${readFileSync(file, "utf8")}`);
    expect((await run(["passwd", file, "bob", "--password", "s3cret"])).code).toBe(0);
    const updated = await run(["passwd", file, "alice", "--password", "correct horse"]);
    expect(updated.stderr).toBe(`updated the password of user alice in ${file}\n`);

    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    expect(lines[0]).toBe("# devices");
    expect(lines.slice(1).map((l) => l.split(":")[0])).toEqual(["alice", "bob"]);
    expect(lines[1]).toMatch(/^alice:\$argon2id\$v=19\$/);

    const auth = await service({ passwordFile: file });
    await expect(auth.authenticateMqtt({ username: "alice", password: "correct horse", clientId: "c" })).resolves.toMatchObject({ kind: "password", subject: "alice" });
    await expect(auth.authenticateMqtt({ username: "alice", password: "hunter2", clientId: "c" })).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    await expect(auth.authenticateMqtt({ username: "bob", password: "s3cret", clientId: "c" })).resolves.toBeDefined();
    auth.close();
  });

  it("deletes a user (exit 3 when absent), refuses bad names and empty passwords (exit 2)", async () => {
    const file = join(dir, "passwd-2");
    expect((await run(["passwd", "-c", file, "carol", "--password", "x"])).code).toBe(0);
    expect(await run(["passwd", "-D", file, "carol"])).toMatchObject({ code: 0, stderr: `deleted user carol from ${file}\n` });
    expect(readFileSync(file, "utf8")).toBe("");
    expect((await run(["passwd", "-D", file, "carol"])).code).toBe(3);
    const colon = await run(["passwd", file, "a:b", "--password", "x"]);
    expect(colon.code).toBe(2);
    expect(colon.stderr).toContain('contains ":"');
    expect((await run(["passwd", file, "dave"], "\n")).code).toBe(2);
    expect(readFileSync(file, "utf8")).toBe(""); // nothing written for a refused password
  });

  it("fixes a plain-text line of an old file and warns about the others", async () => {
    const file = join(dir, "passwd-old");
    writeFileSync(file, "erin:plaintext\nfrank:alsoplain\n");
    const r = await run(["passwd", file, "erin", "--password", "new"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("tributary: warning: ");
    expect(r.stderr).toContain('user "frank" is not a hash');
    expect(r.stderr).not.toContain('user "erin"');
  });
});
