// `imdb certs init` writes the CA and the node, client and admin certificates a cluster needs,
// and `imdb certs renew` re-issues them keeping their names, with no openssl.
import { Command } from "commander";
import { CertError, certDaysDefault, initCerts, renewCerts } from "../transport/certs.ts";

function list(v: string | undefined): string[] {
  if (v === undefined) return [];
  return v.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

interface RenewFlags { dir: string; addHosts?: string; days: string }
interface InitFlags { dir: string; nodes?: string; clients?: string; admins?: string; hosts?: string; days: string; force?: boolean }

export function register(program: Command): void {
  const certs = program.command("certs").description("certificates for mutual TLS");
  certs
    .command("init")
    .description("write DIR/ca.crt+key and a .crt/.key per node, client and admin (never overwrites without --force)")
    .requiredOption("--dir <dir>", "output folder (created 0700 if missing)")
    .option("--nodes <ids>", "comma-separated node ids: CN and SAN of each node certificate (needed for a new CA)")
    .option("--clients <names>", "comma-separated client certificate names", "client")
    .option("--admins <names>", "comma-separated admin certificate names (may call AdminService)")
    .option("--hosts <hosts>", "extra DNS names / IPs added to every node certificate's SAN")
    .option("--days <n>", "validity in days", String(certDaysDefault))
    .option("--force", "overwrite existing files, including the CA")
    .action(async function (this: Command, flags: InitFlags) {
      const days = Number(flags.days);
      try {
        const res = await initCerts({
          dir: flags.dir, nodes: list(flags.nodes), clients: list(flags.clients), admins: list(flags.admins),
          // Not given (undefined) differs from given empty (--hosts ""): see initCerts.
          hosts: flags.hosts === undefined ? null : list(flags.hosts), days, force: flags.force === true,
        });
        if (res.reusedCa) console.log(`certs: signed with the existing CA in ${flags.dir}`);
        for (const f of res.written) console.log(`wrote ${f}`);
      } catch (err) {
        if (err instanceof CertError) this.error(`error: ${err.message}`, { exitCode: 2, code: "imdb.certs" });
        throw err;
      }
    });
  certs
    .command("renew")
    .description("re-issue NAME.crt/.key with the existing CA, keeping the role and every name (SAN) of the certificate it replaces")
    .argument("<names>", "comma-separated certificate names (node ids, client or admin names) in --dir")
    .requiredOption("--dir <dir>", "folder holding ca.crt, ca.key and the certificates to renew")
    .option("--add-hosts <hosts>", "DNS names / IPs added to the names a node certificate keeps")
    .option("--days <n>", "validity in days", String(certDaysDefault))
    .action(async function (this: Command, names: string, flags: RenewFlags) {
      try {
        const res = await renewCerts({ dir: flags.dir, names: list(names), addHosts: list(flags.addHosts), days: Number(flags.days) });
        for (const r of res) {
          console.log(`wrote ${r.crt} (names: ${r.sans.join(", ")})`);
          console.log(`wrote ${r.key}`);
          console.log(`kept the old pair as ${r.previous.crt} and ${r.previous.key}`);
        }
      } catch (err) {
        if (err instanceof CertError) this.error(`error: ${err.message}`, { exitCode: 2, code: "imdb.certs" });
        throw err;
      }
    });
}
