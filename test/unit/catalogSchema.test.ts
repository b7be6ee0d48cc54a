import { expect } from 'chai';
import { catalogPathProblem, serializeCatalog, validateCatalog } from '../../src/catalog/schema.js';

const entry = {
  file: 'cisco/c9300.bin',
  platform: 'cisco-ios-xe',
  version: '17.09.04a',
  size: 10,
  mtime: '2025-01-31T12:00:00.000Z',
  sha256: 'a'.repeat(64),
  md5: 'b'.repeat(32),
  sha512: 'c'.repeat(128),
  vendorChecked: ['md5'],
};

function lines(raw: unknown): string[] {
  return validateCatalog(raw).problems.map((p) => `${p.path}: ${p.message}`);
}

describe('catalog schema', function () {
  it('accepts a valid catalog and round-trips it, sorted by path', function () {
    const second = { ...entry, file: 'aruba/x.swi', sha1: 'd'.repeat(40), vendorChecked: ['sha1'] };
    const { catalog, problems } = validateCatalog({ format: 'swfw-catalog', version: 1, images: [entry, second] });
    expect(problems).to.deep.equal([]);
    const text = serializeCatalog(catalog!);
    expect(text.endsWith('}\n')).to.equal(true);
    const again = validateCatalog(JSON.parse(text));
    expect(again.catalog!.images.map((e) => e.file)).to.deep.equal(['aruba/x.swi', 'cisco/c9300.bin']);
    expect(again.catalog!.images[0]).to.deep.equal(second);
  });

  it('reports one line per problem, each with its path', function () {
    const bad = {
      format: 'swfw-catalog',
      version: 2,
      extra: true,
      images: [
        { ...entry, sha256: 'A'.repeat(64), size: -1, colour: 'red' },
        { ...entry, file: '../etc/passwd', mtime: 'yesterday', md5: 'b'.repeat(31) },
        { ...entry, platform: '', vendorChecked: ['crc32'] },
        { ...entry },
        'nonsense',
      ],
    };
    expect(lines(bad)).to.deep.equal([
      'extra: unknown key (known: format, version, images)',
      'version: must be 1 (this swfw reads catalog version 1)',
      'images[0].colour: unknown key (known: file, platform, version, size, mtime, sha256, md5, sha512, sha1, vendorChecked)',
      'images[0].size: must be a whole number of bytes',
      'images[0].sha256: must be 64 lowercase hex digits',
      'images[1].file: must not contain empty, "." or ".." segments',
      'images[1].mtime: must be an ISO 8601 UTC time such as 2025-01-31T12:00:00.000Z',
      'images[1].md5: must be 32 lowercase hex digits',
      'images[2].file: duplicate of images[0] ("cisco/c9300.bin")',
      'images[2].platform: must be 1-64 characters of A-Z a-z 0-9 . _ + - (starting with a letter or digit)',
      'images[2].vendorChecked: must be a list of algorithms (sha256, md5, sha512, sha1)',
      'images[3].file: duplicate of images[0] ("cisco/c9300.bin")',
      'images[4]: must be an object',
    ]);
  });

  it('needs an object with images', function () {
    expect(lines([])).to.deep.equal(['(root): must be a JSON object with format, version and images']);
    expect(lines({ format: 'swfw-catalog', version: 1 })).to.deep.equal(['images: must be a list of images']);
    expect(lines({ format: 'swfw-catalog', version: 1, images: [{ ...entry, vendorChecked: ['sha1'] }] })).to.deep.equal([
      'images[0].vendorChecked: lists sha1 but the entry has no sha1',
    ]);
  });

  it('catalog paths stay inside the images directory', function () {
    expect(catalogPathProblem('cisco/a.bin')).to.equal(null);
    for (const bad of ['', '/etc/passwd', 'a/../../b', './a', 'a//b', 'a\\b', 'a\nb', 'catalog.json']) expect(catalogPathProblem(bad), bad).to.be.a('string');
  });
});
