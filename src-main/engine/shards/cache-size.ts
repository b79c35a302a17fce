/**
 * How many models a shard worker keeps loaded at once (engine/shards/classifiers.ts). Its own module,
 * without imports, so the pool (which asks its threads to prepare models and keeps track of what they
 * hold) reads it without loading the engine.
 */
export const MAX_CACHED_CLASSIFIERS = 4;
