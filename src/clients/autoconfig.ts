/**
 * What mail clients fetch to set themselves up, and the MTA-STS policy, built from the client settings
 * (src/clients/settings.ts: the same model as the daemons' configs) with xmlbuilder (the XML builder
 * the property-list library uses too: it loads in a fraction of xmlbuilder2's time, and apply renders
 * these at every run). The host serves them over HTTPS (playbooks/autoconfig.yaml). Pure.
 */
import { createHash } from 'node:crypto';
import { build as plist } from 'plist';
import xmlbuilder from 'xmlbuilder';
import type { Domain, Mailbox, Site } from '../model/site.js';
import { mxRecords } from '../dns/records.js';
import { settingsFor } from './settings.js';
import type { Server } from './settings.js';

const socket = (s: Server) => (s.security === 'SSL/TLS' ? 'SSL' : 'STARTTLS');

/** Thunderbird's autoconfig (clientConfig 1.1): every server, the recommended one first; the file as served. */
export function thunderbirdConfig(site: Site, d: Domain): string {
  const s = settingsFor(site, d);
  const doc = xmlbuilder.create('clientConfig', { version: '1.0', encoding: 'UTF-8' }).att('version', '1.1').ele('emailProvider', { id: d.name });
  doc.ele('domain').txt(d.name);
  doc.ele('displayName').txt(`Mail of ${d.name}`);
  doc.ele('displayShortName').txt(d.name);
  const server = (tag: string, x: Server) => {
    const e = doc.ele(tag, { type: x.protocol.toLowerCase() });
    e.ele('hostname').txt(x.host);
    e.ele('port').txt(String(x.port));
    e.ele('socketType').txt(socket(x));
    e.ele('username').txt('%EMAILADDRESS%');
    e.ele('authentication').txt('password-cleartext');
  };
  for (const x of s.incoming) server('incomingServer', x);
  for (const x of s.outgoing) server('outgoingServer', x);
  return `${doc.end({ pretty: true })}\n`;
}

/** Outlook's autodiscover (POX response schema 2006a): the recommended servers. */
export function autodiscoverXml(site: Site, d: Domain): string {
  const s = settingsFor(site, d);
  const account = xmlbuilder
    .create('Autodiscover', { version: '1.0', encoding: 'utf-8' })
    .att('xmlns', 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006')
    .ele('Response', { xmlns: 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a' })
    .ele('Account');
  account.ele('AccountType').txt('email');
  account.ele('Action').txt('settings');
  for (const x of [...s.incoming, ...s.outgoing].filter((y) => y.recommended)) {
    const p = account.ele('Protocol');
    p.ele('Type').txt(x.protocol === 'POP3' ? 'POP3' : x.protocol);
    p.ele('Server').txt(x.host);
    p.ele('Port').txt(String(x.port));
    p.ele('DomainRequired').txt('off');
    p.ele('SPA').txt('off');
    p.ele('SSL').txt('on');
    p.ele('AuthRequired').txt('on');
    if (x.protocol === 'SMTP') p.ele('UsePOPAuth').txt('on');
  }
  return account.end({ pretty: false });
}

/** Outlook's JSON autodiscover (AutodiscoverV1): where the POX answer is. */
export function autodiscoverJson(d: Domain): string {
  return JSON.stringify({ Protocol: 'AutodiscoverV1', Url: `https://autodiscover.${d.name}/autodiscover/autodiscover.xml` });
}

/** A stable UUID (RFC 4122 form) from a name: a re-render gives the same profile. */
function uuidOf(name: string): string {
  const h = createHash('sha256').update(name).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`.toUpperCase();
}

/** An Apple configuration profile (.mobileconfig) with the mail account of one address, as served; no password in it. */
export function appleProfile(site: Site, d: Domain, m: Mailbox): string {
  const s = settingsFor(site, d, m);
  const inc = s.incoming.find((x) => x.recommended);
  const out = s.outgoing.find((x) => x.recommended)!;
  const id = `mailops.${d.name.split('.').reverse().join('.')}.${m.local}`;
  const account = {
    PayloadType: 'com.apple.mail.managed',
    PayloadVersion: 1,
    PayloadIdentifier: `${id}.account`,
    PayloadUUID: uuidOf(`${m.address} account`),
    PayloadDisplayName: m.address,
    EmailAccountDescription: m.address,
    EmailAccountName: m.address,
    EmailAddress: m.address,
    EmailAccountType: inc?.protocol === 'POP3' ? 'EmailTypePOP' : 'EmailTypeIMAP',
    IncomingMailServerHostName: inc?.host ?? out.host,
    IncomingMailServerPortNumber: inc?.port ?? 993,
    IncomingMailServerUseSSL: true,
    IncomingMailServerAuthentication: 'EmailAuthPassword',
    IncomingMailServerUsername: s.username,
    OutgoingMailServerHostName: out.host,
    OutgoingMailServerPortNumber: out.port,
    OutgoingMailServerUseSSL: true,
    OutgoingMailServerAuthentication: 'EmailAuthPassword',
    OutgoingMailServerUsername: s.username,
    OutgoingPasswordSameAsIncomingPassword: true,
  };
  const profile = plist.call(null, {
    PayloadType: 'Configuration',
    PayloadVersion: 1,
    PayloadIdentifier: id,
    PayloadUUID: uuidOf(m.address),
    PayloadDisplayName: `Mail: ${m.address}`,
    PayloadDescription: `The mail account ${m.address}; the password is asked for when the profile is installed.`,
    PayloadContent: [account],
  });
  return `${profile}\n`;
}

/** The id of an MTA-STS policy (its _mta-sts TXT record): a digest of the text, so it changes when the policy does. */
export const mtaStsId = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 20);

/** The MTA-STS policy (RFC 8461) of the site, as served, and its id. */
export function mtaStsPolicy(site: Site): { text: string; id: string } | undefined {
  if (site.stack.mtaSts === 'none') return undefined;
  const maxAge = site.stack.mtaSts === 'enforce' ? 604800 : 86400;
  const text = `version: STSv1\r\nmode: ${site.stack.mtaSts}\r\n${mxRecords(site)
    .map((m) => `mx: ${m.host}\r\n`)
    .join('')}max_age: ${maxAge}\r\n`;
  return { text, id: mtaStsId(text) };
}
