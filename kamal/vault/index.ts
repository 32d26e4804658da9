/**
 * The vault adapters by the names `kamal secrets fetch --adapter` takes (Kamal 2.12's, with
 * its aliases: 1password, lastpass, gcp, bitwarden-sm).
 */
import { type VendorCli, type Vault, VaultError } from "./adapter";
import { AwsSecretsManager } from "./awsSecretsManager";
import { Bitwarden } from "./bitwarden";
import { BitwardenSecretsManager } from "./bitwardenSecretsManager";
import { Doppler } from "./doppler";
import { Enpass } from "./enpass";
import { GcpSecretManager } from "./gcpSecretManager";
import { LastPass } from "./lastPass";
import { OnePassword } from "./onePassword";
import { Passbolt } from "./passbolt";
import { TestAdapter } from "./testAdapter";

/** By Kamal's class name (its adapter name, camelized). */
const ADAPTERS: Record<string, new (cli: VendorCli) => Vault> = {
  AwsSecretsManager,
  Bitwarden,
  BitwardenSecretsManager,
  Doppler,
  Enpass,
  GcpSecretManager,
  LastPass,
  OnePassword,
  Passbolt,
  Test: TestAdapter,
};

const ALIASES: Record<string, string> = { "1password": "one_password", lastpass: "last_pass", gcp: "gcp_secret_manager", "bitwarden-sm": "bitwarden_secrets_manager" };

/** The adapter `--adapter NAME` names, as Kamal looks it up. */
export function vaultAdapter(name: string, cli: VendorCli): Vault {
  const resolved = ALIASES[name.toLowerCase()] ?? name;
  const Adapter = Object.hasOwn(ADAPTERS, camelize(resolved)) ? ADAPTERS[camelize(resolved)] : undefined;
  if (!Adapter) throw new VaultError(`Unknown secrets adapter: ${resolved}`);
  return new Adapter(cli);
}

/** ActiveSupport's `camelize` for these names: "aws_secrets_manager" → "AwsSecretsManager". */
function camelize(name: string): string {
  const capitalize = (w: string) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase();
  return name.replace(/^[a-z\d]*/, capitalize).replace(/_([a-z\d]*)/gi, (_m, w: string) => capitalize(w));
}

export { VaultError, vendorCli, type VendorCli } from "./adapter";
