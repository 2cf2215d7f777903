import { defineConfig } from "vite";

// The build lands inside the Python package, which serves it at /admin/ (emporium.core.http.admin_ui).
export default defineConfig({
  base: "/admin/",
  esbuild: { jsx: "automatic", legalComments: "none" },
  build: {
    outDir: "../src/emporium/core/http/admin_dist",
    emptyOutDir: true,
    sourcemap: false,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      // MUI marks modules "use client" (a React Server Components hint); irrelevant in a browser bundle.
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
      output: { manualChunks: { vendor: ["react", "react-dom", "react-admin", "@mui/material"] } },
    },
  },
});
