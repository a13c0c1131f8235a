// `indigo-agent doctor [--json] [--object PATH]` — see doctor.ts. Exit 0 when every program verifies,
// 2 when the verifier rejects one, 1 when the object cannot be loaded for another reason.
import { exitCodeOf, formatReport, runDoctor } from "./doctor.ts";

const usage = "usage: indigo-agent doctor [--json] [--object PATH]";

export const doctorMain = (argv: string[]): number => {
  let json = false;
  let object: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--json") json = true;
    else if (flag === "--object" && argv[i + 1] !== undefined) object = argv[++i];
    else {
      process.stderr.write(`indigo-agent doctor: unknown or incomplete option ${flag}\n${usage}\n`);
      return 1;
    }
  }
  const report = runDoctor(object);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return exitCodeOf(report);
};

if (import.meta.main) process.exit(doctorMain(process.argv.slice(2)));
