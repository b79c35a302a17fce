/** The engine a job asks for (`--engine`): see select.ts. Kept free of imports so schemas can use it. */
export const ENGINE_REQUESTS = ['auto', 'onnx', 'tfjs'] as const;
export type EngineRequest = (typeof ENGINE_REQUESTS)[number];
