// Label values that come from requests stay bounded: the heaviest N keep their label, the rest
// are "other", and a value that overtakes the smallest labelled one takes its place.

import { describe, expect, it } from 'vitest';
import { OTHER_LABEL, TopLabels } from '../../src/telemetry/top-labels.js';

describe('TopLabels', () => {
  it('labels the first N, counts the rest as other, demotes the smallest when overtaken', () => {
    const demoted: string[] = [];
    const top = new TopLabels(2, (value) => demoted.push(value), 100);
    expect(top.label('a', 10)).toBe('a');
    expect(top.label('b', 5)).toBe('b');
    expect(top.label('c', 3)).toBe(OTHER_LABEL);
    expect(top.label('c', 3)).toBe('c'); // 6 > b's 5
    expect(demoted).toEqual(['b']);
    expect([...top.labelled].sort()).toEqual(['a', 'c']);
  });

  it('stays bounded under a flood of one-off values', () => {
    const top = new TopLabels(20, () => {}, 1_000);
    for (let i = 0; i < 100_000; i++) top.label(`client-${i}`, 1);
    expect(top.labelled.size).toBe(20);
  });
});
