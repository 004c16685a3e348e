import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

const pure = ['src/billing/money.ts', 'src/billing/tariff.ts', 'src/billing/rules.ts', 'src/billing/cron.ts', 'src/radius/dictionary.ts', 'src/radius/attributes.ts', 'src/radius/packet.ts', 'src/radius/reply-cache.ts', 'src/radius/slot-index.ts', 'src/radius/md5.ts'];

export default tseslint.config(
  { ignores: ['node_modules/', 'var/', 'dist/', 'coverage/', 'bench/out/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver': { typescript: true, node: true } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // The house's "who may import whom" (docs/style.md).
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            { target: './src/db', from: ['./src/billing', './src/radius', './src/api'], message: 'db/ must not depend on domain modules' },
            { target: './src/billing', from: ['./src/radius', './src/api', './src/main.ts'], message: 'billing never imports radius or api: inject effects from main.ts' },
            { target: './src/radius', from: ['./src/api', './src/main.ts'], message: 'radius must not import api or main' },
            { target: './src/api', from: ['./src/radius/server.ts', './src/main.ts'], message: 'api must not import the RADIUS server or main' },
            ...pure.map((target) => ({
              target: `./${target}`,
              from: ['./src/db/connection.ts', './src/db/open.ts', './src/db/embedded.ts', './src/db/migrate.ts', './src/config.ts', './src/log.ts', './src/clock.ts', './src/api', './src/main.ts'],
              message: 'pure modules take values, not the db, config, logger or clock',
            })),
          ],
        },
      ],
      'no-restricted-imports': 'off',
    },
  },
  {
    files: pure,
    rules: {
      'no-restricted-imports': ['error', { paths: ['pg', 'kysely', 'node:dgram', 'fastify', 'pino'].map((name) => ({ name, message: 'pure modules do no I/O' })) }],
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'pure modules take `now` as an argument' },
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'pure modules take `now` as an argument' },
        { selector: "CallExpression[callee.object.name='performance'][callee.property.name='now']", message: 'pure modules do not read the clock' },
      ],
    },
  },
);
