/**
 * The bounds of every list-valued API parameter, in one place. Each is said in the error a longer
 * list gets (e.g. "at most 50 tags"), and each keeps what the host does with a list (dedupe, filter,
 * merge) small: no request can make the host thread do work that grows with the square of its size.
 * Plain constants (no imports at all), at the bottom of the layers: the attack goals, the job schemas,
 * the listening schemas, the API contract and the renderer read them.
 */

/** Tags given at once: a job's or listening test's `tags`, and each of sessions.tag's `add` and `remove`. */
export const MAX_TAGS = 50;
/** Characters of one tag. */
export const MAX_TAG_CHARS = 100;
/** Sessions in one HTML report or comparison (sessions.report `ids`). */
export const MAX_REPORT_SESSIONS = 20;
/** Audio-attack sessions compared in one listening test (listening.create `sessions`). */
export const MAX_LISTENING_SESSIONS = 50;
/** Values of an epsilon sweep (sweep `epsilons`). */
export const MAX_SWEEP_EPSILONS = 50;
/** Direction pairs of one loss-surface job (loss-surface `directions`). */
export const MAX_SURFACE_DIRECTIONS = 2;

/** Target classes of a goal listed one per image (goal `target`): at most one per image an attack job takes (its `n`). */
export const MAX_TARGET_CLASSES = 10_000;

/** Threads of the local shard pool (--workers, ADVLAB_WORKERS, settings.set `workers`): each holds its own models and tensors. */
export const MAX_POOL_WORKERS = 64;

/** The error of a list over its bound: "at most 50 tags". */
export const atMost = (n: number, what: string) => ({ message: `at most ${n} ${what}` });
