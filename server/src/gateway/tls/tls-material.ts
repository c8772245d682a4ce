/**
 * Reads and checks the node's TLS files (config `tls.*`, docs/security.md#tls): a PEM
 * certificate, its private key (optionally encrypted, with the passphrase file), optional
 * intermediates. Every failure is a TributaryError("INVALID_CONFIG") naming the field and
 * the file and saying what to fix; a key that does not belong to the certificate is
 * refused here, before any listener could serve it.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createSecureContext } from "node:tls";
import type { TributaryConfig } from "../../config/config.ts";
import { TributaryError } from "../../errors.ts";

/** One checked set of TLS files, as read at one moment. */
export interface TlsMaterial {
  /** The leaf certificate followed by the intermediates (certFile's own and caFile's), PEM. */
  readonly certChain: Buffer;
  /** The private key as in keyFile (still encrypted when it was). */
  readonly key: Buffer;
  readonly passphrase: string | undefined;
  /** The leaf: serial (hex, upper case), subject, DNS names, validity. */
  readonly leaf: { serial: string; subject: string; dnsNames: string[]; validTo: Date; fingerprint256: string };
  /** The raw bytes of every file, to tell whether a reload changed anything. */
  readonly source: Buffer;
}

type TlsConfig = TributaryConfig["tls"];

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** True when TLS is configured (certFile and keyFile set). */
export function tlsConfigured(tls: TlsConfig): tls is TlsConfig & { certFile: string; keyFile: string } {
  return tls.certFile !== null && tls.keyFile !== null;
}

/** Reads and checks the TLS files; rejects with INVALID_CONFIG saying what to fix. */
export async function readTlsMaterial(tls: TlsConfig): Promise<TlsMaterial> {
  if (!tlsConfigured(tls)) throw new TributaryError("INVALID_CONFIG", "tls: set both tls.certFile and tls.keyFile");
  const certBytes = await readPem("tls.certFile", tls.certFile);
  const keyBytes = await readPem("tls.keyFile", tls.keyFile);
  const caBytes = tls.caFile === null ? null : await readPem("tls.caFile", tls.caFile);
  const passBytes = tls.passphraseFile === null ? null : await readPem("tls.passphraseFile", tls.passphraseFile);
  const passphrase = passBytes === null ? undefined : passBytes.toString("utf8").replace(/\r?\n$/, "");

  const certs = certificates("tls.certFile", tls.certFile, certBytes, "the server certificate (-----BEGIN CERTIFICATE-----)");
  const chain = caBytes === null ? [] : certificates("tls.caFile", tls.caFile!, caBytes, "intermediate CA certificates (-----BEGIN CERTIFICATE-----)");
  const leaf = certs[0]!.x509;
  if (leaf.ca) {
    throw invalid("tls.certFile", tls.certFile, "starts with a CA certificate; put the server (leaf) certificate first, then its intermediates");
  }
  const key = privateKey(tls.keyFile, keyBytes, passphrase, tls.passphraseFile);
  if (!leaf.checkPrivateKey(key)) {
    throw invalid("tls.keyFile", tls.keyFile, `does not match the certificate in ${tls.certFile} (subject ${leaf.subject.replaceAll("\n", ", ")}); give the key the certificate was issued for`);
  }
  const certChain = Buffer.from([...certs, ...chain].map((c) => c.pem).join("\n") + "\n");
  try {
    createSecureContext({ cert: certChain, key: keyBytes, passphrase });
  } catch (err) {
    throw new TributaryError("INVALID_CONFIG", `tls: OpenSSL refuses the certificate and key (${(err as Error).message}); check tls.certFile ${tls.certFile} and tls.keyFile ${tls.keyFile}`, {}, { cause: err });
  }
  return {
    certChain,
    key: keyBytes,
    passphrase,
    leaf: {
      serial: leaf.serialNumber.toUpperCase(),
      subject: leaf.subject.replaceAll("\n", ", "),
      dnsNames: dnsNamesOf(leaf),
      validTo: new Date(leaf.validTo),
      fingerprint256: leaf.fingerprint256,
    },
    source: Buffer.concat([certBytes, keyBytes, caBytes ?? Buffer.alloc(0), passBytes ?? Buffer.alloc(0)]),
  };
}

async function readPem(field: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === "ENOENT" ? "does not exist" : code === "EACCES" ? "is not readable by this user" : `cannot be read (${code ?? String(err)})`;
    throw invalid(field, file, what, err);
  }
}

function certificates(field: string, file: string, bytes: Buffer, what: string): Array<{ pem: string; x509: X509Certificate }> {
  const blocks = bytes.toString("latin1").match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw invalid(field, file, `holds no PEM certificate; it should hold ${what}`);
  return blocks.map((pem, i) => {
    try {
      return { pem, x509: new X509Certificate(pem) };
    } catch (err) {
      throw invalid(field, file, `certificate ${i + 1} does not parse (${(err as Error).message}); it should hold ${what}`, err);
    }
  });
}

function privateKey(file: string, bytes: Buffer, passphrase: string | undefined, passphraseFile: string | null): KeyObject {
  const text = bytes.toString("latin1");
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw invalid("tls.keyFile", file, "holds no PEM private key (-----BEGIN PRIVATE KEY-----); give the certificate's private key");
  }
  const encrypted = /ENCRYPTED/.test(text);
  if (encrypted && passphrase === undefined) {
    throw invalid("tls.keyFile", file, "is encrypted; set tls.passphraseFile to a file holding its passphrase (or decrypt it: openssl pkey -in key.pem -out plain.pem)");
  }
  try {
    return createPrivateKey({ key: bytes, format: "pem", passphrase });
  } catch (err) {
    const why = encrypted ? `cannot be decrypted with the passphrase in ${passphraseFile}` : `does not parse (${(err as Error).message})`;
    throw invalid("tls.keyFile", file, `${why}; give the certificate's private key in PEM`, err);
  }
}

/** DNS names of the certificate's subjectAltName (lower case; wildcards kept as `*.example.com`). */
function dnsNamesOf(cert: X509Certificate): string[] {
  const names: string[] = [];
  for (const part of (cert.subjectAltName ?? "").split(",")) {
    const m = /^\s*DNS:(.+)$/.exec(part);
    if (m) names.push(m[1]!.trim().toLowerCase());
  }
  return names;
}

function invalid(field: string, file: string, what: string, cause?: unknown): TributaryError {
  return new TributaryError("INVALID_CONFIG", `${field}: ${file} ${what}`, { field, file }, cause === undefined ? undefined : { cause });
}
