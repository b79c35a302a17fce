/** The parts of sessions.list / sessions.show results the audio views read (kept here so the renderer imports no engine code). */
export type SummaryValue = string | number | boolean | null;

export interface SessionLite {
  id: string;
  kind: string;
  name: string;
  status: string;
  created: string;
  summary: Record<string, SummaryValue>;
}

export interface SessionDetailsLite {
  id: string;
  status: string;
  series: string[];
  manifest: { name: string; kind: string; params: Record<string, unknown>; summary: Record<string, SummaryValue> };
  artifacts: { path: string; kind: string }[];
}
