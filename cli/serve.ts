export async function run(_argv: string[]): Promise<number> {
  process.stderr.write("berth serve: not yet\n");
  return 1;
}
