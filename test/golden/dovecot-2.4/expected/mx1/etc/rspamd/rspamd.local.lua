-- rspamd rules of mail.example.com (example), managed by mailops: local edits are overwritten.
local lua_auth_results = require 'lua_auth_results'
local rspamd_util = require 'rspamd_util'

-- The mail domains of this server.
local own = {
  ['example.com'] = true,
}
-- The name this server gives itself in Authentication-Results (its host name, as Postfix tells the milter).
local hostname = 'mail.example.com'

local function domain_of(addrs)
  local a = addrs and addrs[1]
  if a and a.domain and a.domain ~= '' then return a.domain:lower() end
  return nil
end

-- Neither an authenticated user nor the host itself (loopback: local_addrs).
local function from_outside(task)
  if task:get_user() then return false end
  local ip = task:get_from_ip()
  return not (ip and ip:is_valid() and ip:is_local())
end

-- A forged sender of our own domains: the envelope or header sender is in one of them, the mail comes from
-- outside, and neither SPF passes for an envelope sender of ours nor does a DKIM signature of one of our
-- domains verify. Refused whatever the domain's published DMARC policy says (none, or not published yet):
-- nobody but this server and the senders its SPF names sends mail in these domains.
rspamd_config:register_symbol({
  name = 'MAILOPS_FORGED_OWN_DOMAIN',
  type = 'normal',
  score = 0.0,
  group = 'policies',
  description = 'Sender in a domain of this server, from outside, with no SPF pass and no DKIM signature of that domain',
  callback = function(task)
    if not from_outside(task) then return false end
    local env = domain_of(task:get_from('smtp'))
    local hdr = domain_of(task:get_from('mime'))
    local forged = (hdr and own[hdr] and hdr) or (env and own[env] and env)
    if not forged then return false end
    if env and own[env] and task:has_symbol('R_SPF_ALLOW') then return false end
    for _, r in ipairs(task:get_dkim_results() or {}) do
      if r.result == 'allow' and r.domain and own[r.domain:lower()] then return false end
    end
    task:set_pre_result('reject', string.format('Forged sender: %s is a domain of this server, and this message has neither its SPF pass nor its DKIM signature', forged), 'mailops')
    return true, 1.0, forged
  end,
})
rspamd_config:register_dependency('MAILOPS_FORGED_OWN_DOMAIN', 'R_SPF_ALLOW')
rspamd_config:register_dependency('MAILOPS_FORGED_OWN_DOMAIN', 'R_DKIM_ALLOW')

-- The headers milter_headers gives Postfix (milter_headers.conf), for Exim: Exim asks rspamd over its
-- RSPAMC protocol, whose reply has the score, the action and the messages but no headers, so they travel as
-- messages ("Message: Authentication-Results: ...", "Message: X-Spam-Status: ...") that Exim's DATA ACL
-- adds. Made by the same code as milter_headers' (lua_auth_results), under the host name Postfix would give.
local function with_hostname(ar)
  local own_name = rspamd_util.get_hostname()
  if not own_name or own_name == hostname or ar:sub(1, #own_name + 1) ~= own_name .. ';' then return ar end
  local out = hostname .. ar:sub(#own_name + 1)
  local i, marker, parts = 1, '(' .. own_name .. ': ', {}
  while true do
    local a, b = out:find(marker, i, true)
    if not a then break end
    parts[#parts + 1] = out:sub(i, a - 1) .. '(' .. hostname .. ': '
    i = b + 1
  end
  parts[#parts + 1] = out:sub(i)
  return table.concat(parts)
end

rspamd_config:register_symbol({
  name = 'MAILOPS_HEADERS_FOR_EXIM',
  type = 'idempotent',
  callback = function(task)
    if task:has_flag('milter') or not from_outside(task) then return end
    local ar = lua_auth_results.gen_auth_results(task, lua_auth_results.default_settings)
    if ar then
      if not task:get_request_header('MTA-Name') then ar = with_hostname(ar) end
      task:append_message('Authentication-Results: ' .. ar, 'mailops_authentication_results')
    end
    local action = task:get_metric_action()
    local spam = (action ~= 'no action' and action ~= 'greylist') and 'Yes' or 'No'
    task:append_message(string.format('X-Spam-Status: %s, score=%.2f', spam, task:get_metric_score()[1]), 'mailops_x_spam_status')
  end,
})
