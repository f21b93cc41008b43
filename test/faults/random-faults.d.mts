export interface RandomFault {
  kind: 'any';
  n: number;
  errno: string;
  at: 'write' | 'finish';
  sticky: true;
}
export function prng(seed: number): () => number;
export function randomFault(random: () => number, writes: number): RandomFault;
export const FAILED_WRITE_EXITS: readonly number[];
