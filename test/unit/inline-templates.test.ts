import { describe, expect, it } from 'vitest';
import { hbs, inlineCheck, renderString } from '../../src/render/handlebars.js';

/** What Handlebars itself renders, with the options every template is compiled with. */
const handlebars = (t: string, ctx: object) => hbs.compile(t, { noEscape: true, preventIndent: false })(ctx);

describe('inline templates of text and paths, rendered without Handlebars', () => {
  const ctx = {
    os: { paths: { postfix: '/etc/postfix' }, family: 'debian' },
    vmail: { uid: 5000, user: 'vmail', flag: false, none: null },
    list: ['a', 'b'],
    name: 'mx1',
    'dash-name': 'd',
    fn: () => 'called',
    nested: { fn: () => 'called too' },
    text: 'abc',
  };
  const cases = [
    '{{os.paths.postfix}}/main.cf',
    '{{vmail.user}}:{{vmail.uid}} {{vmail.flag}} [{{vmail.none}}] [{{vmail.missing.deeper}}] [{{missing}}]',
    '{{list}} {{list.length}} {{text.length}} {{os.constructor}} {{os.toString}}',
    '{{name}} {{dash-name}}',
    // Not text and paths: Handlebars renders these.
    '{{shq name}}',
    '{{#if name}}yes{{/if}}',
    '{{{name}}}',
    '{{ name }}',
    '\\{{name}}',
    '{{~name}}',
    '{{this.name}}',
    '{{fn}} {{nested.fn}}',
    '{{lookup os "family"}}',
    '{{json}}',
    'a {{name}} b }} c { d',
  ];
  it('renders each exactly as Handlebars does', () => {
    inlineCheck.enabled = true;
    try {
      for (const t of cases) expect(renderString(t, ctx), t).toBe(handlebars(t, ctx));
    } finally {
      inlineCheck.enabled = false;
    }
    expect(renderString('{{vmail.user}}:{{vmail.uid}} {{vmail.flag}} [{{vmail.none}}] [{{vmail.missing.deeper}}] [{{missing}}]', ctx)).toBe('vmail:5000 false [] [] []');
    expect(renderString('{{list}} {{list.length}} {{text.length}} {{os.constructor}} {{os.toString}}', ctx)).toBe('a,b 2 3  ');
    expect(renderString('{{fn}} {{nested.fn}}', ctx)).toBe('called called too');
  });
});
