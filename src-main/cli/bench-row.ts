/** One dated row of BENCHMARKS.md, as every bench suite returns it (the date, machine and backend are added by bench.ts). */
export interface BenchRow { suite: string; benchmark: string; metric: string; value: string; target?: string; met?: boolean }
