/**
 * AWS Secrets Manager through the AWS CLI (`aws secretsmanager batch-get-secret-value`), as
 * Kamal's `aws_secrets_manager` adapter: `--account` is the CLI profile (optional), a secret
 * whose string is a JSON object gives one entry per key ("name/key"), any other string is
 * the value itself.
 */
import { parseJson, prefixed, Vault, VaultError, type FetchOptions } from "./adapter";

interface BatchResult {
  SecretValues?: { Name: string; SecretString?: string }[];
  Errors?: { SecretId: string; Message: string }[];
}

export class AwsSecretsManager extends Vault {
  override readonly requiresAccount = false;

  protected readonly installCheck = { argv: ["aws", "--version"], missing: "AWS CLI is not installed" };


  protected fetchSecrets(secrets: readonly string[], { from, account }: FetchOptions): Record<string, string> {
    const ids = prefixed(secrets, from);
    const r = this.cli.run(["aws", "secretsmanager", "batch-get-secret-value", "--secret-id-list", ...ids, ...(account ? ["--profile", account] : []), "--output", "json"]);
    if (!r.ok) throw new VaultError(`Could not read ${ids.join(", ")} from AWS Secrets Manager`);
    const batch = parseJson<BatchResult>(r.stdout, "AWS Secrets Manager");
    if (batch.Errors?.length) throw new VaultError(batch.Errors.map((e) => `${e.SecretId}: ${e.Message}`).join(" "));
    const results: Record<string, string> = {};
    for (const s of batch.SecretValues ?? []) {
      const text = s.SecretString ?? "";
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        results[s.Name] = text;
        continue;
      }
      if (value !== null && typeof value === "object" && !Array.isArray(value)) {
        for (const [key, v] of Object.entries(value)) results[`${s.Name}/${key}`] = stringified(v);
      } else results[s.Name] = stringified(value);
    }
    return results;
  }
}

/** Strings as they are, anything else as its JSON (Kamal's stringify_secret_value). */
function stringified(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}
