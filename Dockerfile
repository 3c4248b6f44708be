# One image for both apps; the command picks api or worker.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY libs libs
COPY apps apps
COPY test test
COPY bench bench
COPY scripts scripts
COPY examples examples
# The project's own build: TypeScript, then the playground's browser bundle.
RUN npm ci && npm run build && npm prune --omit=dev

FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app /app
EXPOSE 3000
CMD ["node", "apps/api/dist/main.js"]
