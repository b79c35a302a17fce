/** The session rows the audio views read: the store's own types (sessions.list / sessions.show results). */
export type { SummaryValue, SessionSummary as SessionLite, SessionDetails as SessionDetailsLite } from '../../../src-main/engine/sessions';
