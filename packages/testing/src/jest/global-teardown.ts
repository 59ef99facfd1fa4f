export default async function globalTeardown(): Promise<void> {
  await globalThis.__AMPFLOW_INFRA__?.release();
}
