// ESLint flat config: typescript-eslint's type-aware rules over every TypeScript file the compiler
// builds (tsconfig.json), and the plain recommended rules over the build scripts. Formatting is
// Prettier's (.prettierrc.json); no rule here is about layout.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'prebuilds/**', 'docs/api/**', 'node_modules/**'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A switch over a union names every member, so a new member is a compile-time list of places to decide.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // `_name` marks a parameter an interface requires and this implementation does not need.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // `const self = this` is how an object literal's getters reach the outer object.
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['self'] }],
      // `a[i]!` states that the index was checked; the rule calls it unnecessary only because the
      // tsconfig does not set noUncheckedIndexedAccess, under which each one is required.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // The model's dispatch tables and the test doubles pick methods and call them with .call(this)
      // or through the same object; arrow wrappers would only hide which method runs.
      '@typescript-eslint/unbound-method': 'off',
      // The addon and the native kernel are loaded with require() on first use so that importing
      // the package (or the model) never loads native code; an import would load it eagerly.
      '@typescript-eslint/no-require-imports': 'off',
      // Promises here reject with what the kernel layer threw (VfioError, KernelError), passed on unchanged.
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      // `let x = fallback; try { x = probe() } catch { x = fallback }` states the fallback twice on
      // purpose; TypeScript's definite-assignment check already finds a use before assignment.
      'no-useless-assignment': 'off',
      // The message of the error a command prints already carries the cause's message.
      'preserve-caught-error': 'off',
    },
  },
  {
    files: ['**/*.mjs', '**/*.cjs', '**/*.js'],
    extends: [js.configs.recommended],
    // The scripts run on Node.js: its globals, without a dependency for the list.
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
      },
    },
  },
);
