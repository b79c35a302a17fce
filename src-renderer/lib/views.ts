/** The app's views, in navigation order. */
export const VIEWS = [
  { id: 'datasets', label: 'Datasets & Models' },
  { id: 'train', label: 'Train' },
  { id: 'attack', label: 'Attack' },
  { id: 'evaluate', label: 'Evaluate' },
  { id: 'cases', label: 'Case studies' },
  { id: 'audio', label: 'Audio' },
  { id: 'listening', label: 'Listening test' },
  { id: 'sessions', label: 'Sessions' },
  { id: 'settings', label: 'Settings' },
] as const;
export type ViewId = (typeof VIEWS)[number]['id'];
