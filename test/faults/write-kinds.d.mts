export type WriteKind = 'lock' | 'journal' | 'job' | 'manifest' | 'slice' | 'layout' | 'dataset-file' | 'dataset-layout' | 'other';
export function writeKind(key: string): WriteKind;
