/**
 * Kamal's `test` adapter, for trying a secrets file without a vault: each secret's value is
 * its (prefixed) name reversed, with LPAREN/RPAREN read as parentheses.
 */
import { prefixed, Vault, type FetchOptions } from "./adapter";

export class TestAdapter extends Vault {
  protected readonly installCheck = undefined;

  protected fetchSecrets(secrets: readonly string[], { from }: FetchOptions): Record<string, string> {
    return Object.fromEntries(prefixed(secrets, from).map((s) => [s, [...s.replaceAll("LPAREN", "(").replaceAll("RPAREN", ")")].reverse().join("")]));
  }
}
