/** The demo's closing hints: each works as typed in a new shell (setup puts pulumi and
 * pulumi-kamal in /usr/local/bin). Tested in examples.test.ts. */
export function demoHints(root: string, stackName: string, passphrase: string): string[] {
  return [
    `export PULUMI_CONFIG_PASSPHRASE=${passphrase}`,
    `cd ${root}`,
    `pulumi stack history --stack ${stackName}`,
    `pulumi-kamal details --stack ${stackName}          # what runs where`,
    `pulumi-kamal logs -f --stack ${stackName}           # Ctrl-C to stop`,
    `pulumi-kamal rollback v1 --stack ${stackName}       # back to v1: its container is kept, no pull`,
    `pulumi preview --stack ${stackName}`,
    `pulumi destroy --stack ${stackName}`,
  ];
}

