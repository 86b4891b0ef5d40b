/** Image recipes as data: tags from the recipe files, layers on layers, the stack's packages. Pure (no Docker). */
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stackPackages } from '../../src/testbed/images.js';
import { defaultImagesDir, layerBase, layerTag, parentTag } from '../../src/testbed/recipes.js';

describe('image recipes', () => {
  it('the stack builds on the VPS layer of its own release, and its tag follows every recipe beneath it', () => {
    expect(layerBase('stack')).toBe('vps');
    expect(parentTag('stack')).toBe(layerTag('vps'));
    expect(parentTag('stack', { suite: 'trixie' })).toBe(layerTag('vps', { suite: 'trixie' }, { buildArgs: { SUITE: 'trixie' } }));
    expect(parentTag('stack', { suite: 'trixie' })).not.toBe(parentTag('stack'));
    const args = { buildArgs: { PACKAGES: 'postfix' } };
    expect(layerTag('stack', {}, args)).not.toBe(layerTag('stack', {}, { buildArgs: { PACKAGES: 'exim4-daemon-heavy' } }));
    // An edit of the VPS recipe, or of the base beneath it, makes a new stack tag.
    const dir = mkdtempSync(join(tmpdir(), 'mailops-recipes-'));
    cpSync(defaultImagesDir, dir, { recursive: true });
    const before = layerTag('stack', { imagesDir: dir }, args);
    expect(before).toBe(layerTag('stack', {}, args));
    writeFileSync(join(dir, 'vps', 'mail-stack.txt'), 'postfix\n');
    const vpsEdited = layerTag('stack', { imagesDir: dir }, args);
    expect(vpsEdited).not.toBe(before);
    writeFileSync(join(dir, 'base', 'packages.txt'), 'systemd\n');
    expect(layerTag('stack', { imagesDir: dir }, args)).not.toBe(vpsEdited);
  });

  it("the stack's packages: what the component playbooks install with every feature on, of one MTA", () => {
    const postfix = stackPackages('postfix');
    const exim = stackPackages('exim');
    for (const p of ['dovecot-core', 'dovecot-imapd', 'dovecot-pop3d', 'dovecot-lmtpd', 'dovecot-sieve', 'rspamd', 'redis-server', 'fail2ban', 'nftables', 'nginx', 'certbot']) {
      expect(postfix).toContain(p);
      expect(exim).toContain(p);
    }
    expect(postfix).toEqual(expect.arrayContaining(['postfix', 'opendkim', 'postsrsd', 'policyd-rate-limit', 'libsasl2-modules']));
    expect(postfix).not.toContain('exim4-daemon-heavy');
    expect(exim).toContain('exim4-daemon-heavy');
    for (const p of ['postfix', 'opendkim', 'postsrsd', 'policyd-rate-limit']) expect(exim).not.toContain(p);
  });
});
