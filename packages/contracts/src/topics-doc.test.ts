import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TOPIC_CLASSES } from './topic-configs';
import { Topics } from './topics';
import { renderTopicsDoc } from './topics-doc';

const committed = () => readFileSync(join(__dirname, '..', '..', '..', 'docs', 'topics.md'), 'utf8');

describe('docs/topics.md', () => {
  it('is what `npm run docs:topics` generates from the .avsc files and topic constants', () => {
    // On failure: run `npm run docs:topics` and commit docs/topics.md with the schema or topic change.
    expect(committed()).toBe(renderTopicsDoc());
  });

  it('names every topic constant, and writes optional unions, logical types, arrays and enum symbols', () => {
    const doc = renderTopicsDoc();
    for (const topic of Object.values(Topics)) expect(doc).toContain(`\`${topic}\``);
    for (const name of Object.keys(TOPIC_CLASSES)) expect(doc).toContain(`| \`${name}\` |`);
    expect(doc).toMatch(/\| `notifierRetry` \|.*\| `delete` \| 1209600000 \(14 days\) \| 1048588 \|/);
    expect(doc).toMatch(/\| `endedAt` \| long \(timestamp-millis\) \| yes \(null\) \| `null` \|/);
    expect(doc).toMatch(
      /\| SessionEndReason \| `CHARGING_STOPPED`, `FULLY_CHARGED`, `UNPLUGGED`, `INACTIVITY_TIMEOUT` \|/,
    );
    expect(doc).toMatch(/\| `devices` \| array<record LinkedDevice> \| no \|/);
  });
});
