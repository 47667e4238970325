// SigV4 signing (lib/sigv4.ts) against AWS's documented examples and against the AWS SDK's own signer.
// Run: node --import tsx --test test/sigv4.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { amzDate, canonicalRequest, createSigner, EMPTY_SHA256, s3KeyPath, signingKey, stringToSign, UNSIGNED_PAYLOAD, uriEncode } from '../lib/sigv4.ts';

// AWS Signature Version 4 test suite, case "get-vanilla" (docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html).
test('get-vanilla from the AWS SigV4 test suite', () => {
  const sign = createSigner({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', region: 'us-east-1', service: 'service' });
  const req = { method: 'GET', path: '/', headers: { Host: 'example.amazonaws.com', 'X-Amz-Date': '20150830T123600Z' }, payloadHash: EMPTY_SHA256 };
  assert.equal(canonicalRequest(req).text, `GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n${EMPTY_SHA256}`);
  assert.equal(
    stringToSign(canonicalRequest(req).text, '20150830T123600Z', '20150830/us-east-1/service/aws4_request'),
    'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63',
  );
  assert.equal(
    sign(req),
    'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
  );
});

// Amazon S3 API reference, "Signature calculations for the Authorization header", example "GET Object".
test('S3 documented example: GET Object with Range', () => {
  const sign = createSigner({ accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', region: 'us-east-1', service: 's3' });
  const req = {
    method: 'GET',
    path: `/${s3KeyPath('test.txt')}`,
    headers: { host: 'examplebucket.s3.amazonaws.com', range: 'bytes=0-9', 'x-amz-content-sha256': EMPTY_SHA256, 'x-amz-date': '20130524T000000Z' },
    payloadHash: EMPTY_SHA256,
  };
  const { text, signedHeaders } = canonicalRequest(req);
  assert.equal(signedHeaders, 'host;range;x-amz-content-sha256;x-amz-date');
  assert.equal(stringToSign(text, '20130524T000000Z', '20130524/us-east-1/s3/aws4_request').split('\n')[3], '7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972');
  assert.match(sign(req), / Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41$/);
  // The same key derived per call and cached per day in the signer.
  assert.equal(signingKey('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', '20130524', 'us-east-1', 's3').length, 32);
});

test('header values are trimmed and inner spaces collapsed; names sorted case-insensitively', () => {
  const { text, signedHeaders } = canonicalRequest({ method: 'GET', path: '/', headers: { 'X-B': '  a   b ', host: 'h', 'x-amz-date': '20150830T123600Z' }, payloadHash: UNSIGNED_PAYLOAD });
  assert.equal(signedHeaders, 'host;x-amz-date;x-b');
  assert.match(text, /\nx-b:a b\n/);
});

test('a request without x-amz-date is refused', () => {
  const sign = createSigner({ accessKeyId: 'a', secretAccessKey: 'b', region: 'r', service: 's3' });
  assert.throws(() => sign({ method: 'GET', path: '/', headers: { host: 'h' }, payloadHash: UNSIGNED_PAYLOAD }), /x-amz-date/);
});

test('URI encoding: unreserved bytes kept, everything else %XY of UTF-8, slashes kept between key segments', () => {
  assert.equal(uriEncode("AZaz09-_.~!'()* /+=&?#%"), "AZaz09-_.~%21%27%28%29%2A%20%2F%2B%3D%26%3F%23%25");
  assert.equal(uriEncode('ü'), '%C3%BC');
  assert.equal(s3KeyPath('../escape'), '../escape');
  assert.equal(s3KeyPath('/a//b c/'), '/a//b%20c/');
  assert.equal(s3KeyPath('$(touch pwned)'), '%24%28touch%20pwned%29');
  assert.equal(amzDate(new Date('2015-08-30T12:36:00.123Z')), '20150830T123600Z');
});

/** What the SDK sends for GetObject of `key`: path, headers and Authorization, captured after signing, never sent. */
async function sdkSigned(key: string, forcePathStyle: boolean) {
  const client = new S3Client({
    endpoint: 'http://s3.example.test:9000',
    region: 'eu-central-1',
    forcePathStyle,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
  });
  let captured: { path: string; hostname: string; query: Record<string, string>; headers: Record<string, string> } | undefined;
  client.middlewareStack.add(
    () => async (args) => {
      captured = args.request as typeof captured;
      throw new Error('captured');
    },
    { step: 'deserialize', name: 'capture' },
  );
  await assert.rejects(client.send(new GetObjectCommand({ Bucket: 'bucket', Key: key })), /captured/);
  client.destroy();
  return captured!;
}

for (const forcePathStyle of [true, false]) {
  test(`same Authorization as the AWS SDK's signer for hostile keys (${forcePathStyle ? 'path' : 'virtual-host'} style)`, async () => {
    const keys = ['plain.txt', '../escape', 'a b/ü.txt', '$(touch pwned)', 'x'.repeat(1000), 'dir', 'dir/file', "!'()*[]{}@:;,=+&?#%^`|\\\"<>", '/lead//double/', 'ünï/😀 日本'];
    const sign = createSigner({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', region: 'eu-central-1', service: 's3' });
    for (const key of keys) {
      const sdk = await sdkSigned(key, forcePathStyle);
      const ours = forcePathStyle ? `/bucket/${s3KeyPath(key)}` : `/${s3KeyPath(key)}`;
      assert.equal(ours, sdk.path, `path of ${JSON.stringify(key)}`);
      const auth = sdk.headers.authorization!;
      const names = /SignedHeaders=([^,]+)/.exec(auth)![1]!.split(';');
      assert.ok(names.includes('host') && names.includes('x-amz-date') && names.includes('x-amz-content-sha256'));
      const headers = Object.fromEntries(names.map((n) => [n, sdk.headers[n]!]));
      // The SDK adds ?x-id=GetObject; we send no query.
      const query = Object.entries(sdk.query).map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).sort().join('&');
      assert.equal(sign({ method: 'GET', path: ours, query, headers, payloadHash: sdk.headers['x-amz-content-sha256']! }), auth, `key ${JSON.stringify(key)}`);
    }
  });
}

// The signed GETs of lib/sources/s3.ts: errors worded like the SDK's, and which failures earn another attempt.
test('S3 error documents become SDK-shaped errors; only transient failures are retried', async () => {
  const { s3ErrorOf, retryableGet } = await import('../lib/sources/s3.ts');
  const e = s3ErrorOf(404, '<?xml version="1.0"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket &amp; co. does not exist</Message></Error>');
  assert.equal(e.name, 'NoSuchBucket');
  assert.equal(e.message, 'The specified bucket & co. does not exist');
  assert.equal(e.$metadata.httpStatusCode, 404);
  assert.equal(s3ErrorOf(403, '').name, 'Forbidden');
  assert.equal(s3ErrorOf(502, '<html>bad gateway</html>').name, 'Unknown');
  assert.equal(retryableGet(s3ErrorOf(503, '<Error><Code>SlowDown</Code></Error>')), true);
  assert.equal(retryableGet(s3ErrorOf(500, '')), true);
  assert.equal(retryableGet(s3ErrorOf(403, '<Error><Code>AccessDenied</Code></Error>')), false);
  assert.equal(retryableGet(s3ErrorOf(404, '<Error><Code>NoSuchKey</Code></Error>')), false);
  assert.equal(retryableGet(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })), true);
  assert.equal(retryableGet(Object.assign(new Error('short'), { retryable: true })), true);
  assert.equal(retryableGet(Object.assign(new Error('disk full'), { code: 'ENOSPC' })), false);
});
