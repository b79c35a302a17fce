/** The API's method names, kept free of imports so the preload bundle stays tiny. */
export const METHOD_NAMES = [
  'app.info',
  'datasets.list',
  'datasets.downloads',
  'models.list',
  'models.architectures',
  'attacks.list',
  'recipes.list',
  'jobs.schemas',
  'jobs.start',
  'jobs.cancel',
  'jobs.list',
  'files.choose',
  'sessions.list',
  'sessions.show',
  'sessions.metrics',
  'sessions.artifact',
  'sessions.rename',
  'sessions.tag',
  'sessions.notes',
  'sessions.delete',
  'sessions.restore',
  'sessions.view',
  'sessions.report',
  'sessions.csv',
  'sessions.export',
  'sessions.import',
  'sessions.trash',
  'sessions.emptyTrash',
  'audio.upload',
  'audio.clips',
  'listening.create',
  'listening.answer',
  'listening.finish',
  'studies.start',
  'settings.get',
  'settings.set',
] as const;

export type MethodName = (typeof METHOD_NAMES)[number];

/** IPC channel names (Electron transport). */
export const CALL_CHANNEL = 'advlab:call';
export const EVENT_CHANNEL = 'advlab:event';
