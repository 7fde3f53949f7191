import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isPatchbayError } from '../../domain/errors.ts';
import { decodeXmlText, messageIdFromUrl, parseAtom } from '../atom.ts';

const golden = (name: string): string => readFileSync(new URL(`golden/${name}`, import.meta.url), 'utf8');
const inbox = new URL('http://127.0.0.1:9999/io-uring/');

describe('parseAtom (public-inbox search results)', () => {
  it('reads each entry of the inbox: Message-ID from its link, title, time; skips links elsewhere', () => {
    const entries = parseAtom(golden('search-results.atom'), inbox).map((e) => ({ ...e, updated: e.updated?.toISOString() ?? null }));
    assert.deepEqual(entries, JSON.parse(golden('search-results.json')));
  });

  it('an answer that is not a feed is LORE_BAD_FEED', () => {
    assert.throws(() => parseAtom('<html><body>[No results found]</body></html>', inbox), (e) => isPatchbayError(e) && e.code === 'LORE_BAD_FEED');
  });

  it('the page past the last one (public-inbox sends only "</feed>") has no entries', () => {
    assert.deepEqual(parseAtom('</feed>\n', inbox), []);
  });

  it('an empty feed has no entries', () => {
    assert.deepEqual(parseAtom('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>', inbox), []);
  });

  it('takes linear time on hostile input', () => {
    const big = `<feed>${'<entry><link href="'.repeat(20_000)}`;
    const t = process.hrtime.bigint();
    parseAtom(big, inbox);
    assert.ok(Number(process.hrtime.bigint() - t) / 1e6 < 2000);
  });
});

describe('messageIdFromUrl', () => {
  it('unescapes the last path segment under the inbox', () => {
    assert.equal(messageIdFromUrl('http://127.0.0.1:9999/io-uring/a%2Fb@x.org/', inbox), 'a/b@x.org');
    assert.equal(messageIdFromUrl('/io-uring/m@x.org/', inbox), 'm@x.org');
  });
  it('refuses links outside the inbox, to another origin, deeper paths and non-ids', () => {
    for (const href of ['http://127.0.0.1:9999/other/m@x.org/', 'http://example.org/io-uring/m@x.org/', 'http://127.0.0.1:9999/io-uring/m@x.org/T/', 'http://127.0.0.1:9999/io-uring/nodomain/', 'http://127.0.0.1:9999/io-uring/%E0%A4%A@x/', 'http://127.0.0.1:9999/io-uring/a%0Ab@x/', 'http://127.0.0.1:9999/io-uring/a%3E@x/', `http://127.0.0.1:9999/io-uring/${'x'.repeat(243)}@x/`]) {
      assert.equal(messageIdFromUrl(href, inbox), null, href);
    }
  });

  it('takes the ids senders write that the search syntax cannot carry: spaces, quotes, parentheses', () => {
    assert.equal(messageIdFromUrl('http://127.0.0.1:9999/io-uring/%22quoted%20cover%22@example.org/', inbox), '"quoted cover"@example.org');
    assert.equal(messageIdFromUrl('http://127.0.0.1:9999/io-uring/a(b)OR%20m:c@example.org/', inbox), 'a(b)OR m:c@example.org');
  });
});

describe('decodeXmlText', () => {
  it('decodes the five entities and numeric references, leaves the rest', () => {
    assert.equal(decodeXmlText('&lt;a&gt; &amp; &quot;b&quot; &apos;c&apos; &#65;&#x42; &#xD800; &bogus;'), '<a> & "b" \'c\' AB &#xD800; &bogus;');
  });
});
