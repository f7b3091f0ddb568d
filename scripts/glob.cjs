'use strict';
// A tiny glob for "dir/**/*.suffix" style patterns, so the test script needs no extra package.
const fs = require('fs');
const path = require('path');

function walk(dir, out) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

function toRegExp(pattern) {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
      if (pattern[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if ('.+?^${}()|[]\\'.includes(c)) re += '\\' + c;
    else re += c;
  }
  return new RegExp('^' + re + '$');
}

function globSync(root, patterns) {
  const all = walk(root, [])
    .map((p) => path.relative(root, p))
    .filter((p) => !p.startsWith('node_modules'));
  const out = new Set();
  for (const pat of patterns) {
    if (fs.existsSync(path.resolve(root, pat)) && fs.statSync(path.resolve(root, pat)).isFile()) {
      out.add(path.resolve(root, pat));
      continue;
    }
    const re = toRegExp(pat);
    for (const p of all) if (re.test(p)) out.add(path.resolve(root, p));
  }
  return [...out].sort();
}
module.exports = { globSync };
