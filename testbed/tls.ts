/** Certificates made at run time with openssl (nothing secret is committed): a CA of its own
 * and a certificate it signed for one host name. */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export interface MadeCertificate {
  /** PEM of the CA: what a client must trust. */
  ca: string;
  certFile: string;
  keyFile: string;
  name: string;
}

/** Writes `<prefix>.cert.pem` and `<prefix>.key.pem` (and the CA's files) into `dir`. */
export function makeCertificate(dir: string, name: string, prefix = "server", days = 30): MadeCertificate {
  mkdirSync(dir, { recursive: true });
  const f = (n: string) => path.join(dir, n);
  const ssl = (args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  ssl(["req", "-x509", ...ec, "-days", String(days), "-subj", `/CN=${name} test CA`, "-keyout", f(`${prefix}.ca.key`), "-out", f(`${prefix}.ca.pem`)]);
  ssl(["req", ...ec, "-subj", `/CN=${name}`, "-keyout", f(`${prefix}.key.pem`), "-out", f(`${prefix}.csr`)]);
  writeFileSync(f(`${prefix}.ext`), `subjectAltName=DNS:${name}\n`);
  ssl(["x509", "-req", "-in", f(`${prefix}.csr`), "-CA", f(`${prefix}.ca.pem`), "-CAkey", f(`${prefix}.ca.key`), "-CAcreateserial", "-days", String(days), "-extfile", f(`${prefix}.ext`), "-out", f(`${prefix}.cert.pem`)]);
  return { ca: readFileSync(f(`${prefix}.ca.pem`), "utf8"), certFile: f(`${prefix}.cert.pem`), keyFile: f(`${prefix}.key.pem`), name };
}
