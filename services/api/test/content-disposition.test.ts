import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contentDisposition } from '../content-disposition.ts';

test('a plain name is given twice: quoted and encoded', () => {
  assert.equal(contentDisposition('inline', 'build.log'), `inline; filename="build.log"; filename*=UTF-8''build.log`);
});

test('quotes, backslashes, semicolons, line breaks and non-ASCII cannot leave the quoted string', () => {
  const header = contentDisposition('attachment', 'a"; filename=evil.sh\r\nX-Injected: 1\\ü(*)\'.txt');
  assert.equal(header, `attachment; filename="a__ filename=evil.sh__X-Injected: 1__(*)'.txt"; filename*=UTF-8''a%22%3B%20filename%3Devil.sh%0D%0AX-Injected%3A%201%5C%C3%BC%28%2A%29%27.txt`);
  assert.doesNotMatch(header, /[\r\n]/);
  assert.equal(header.match(/"/g)?.length, 2);
  assert.equal(decodeURIComponent(header.split("UTF-8''")[1] ?? ''), 'a"; filename=evil.sh\r\nX-Injected: 1\\ü(*)\'.txt');
});

test('an empty name still gives a valid header', () => {
  assert.equal(contentDisposition('attachment', ''), `attachment; filename="download"; filename*=UTF-8''`);
});
