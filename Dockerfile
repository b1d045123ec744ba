# neoserve: the OpenAI-compatible server. Build: docker build -t neoserve .
# Run:   docker run -p 8000:8000 -v /models:/models neoserve serve --host 0.0.0.0 --model name=/models/model.gguf
# Stage 1 builds the addon and the TypeScript; stage 2 carries only what runs, as a non-root user.
FROM node:22-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake ninja-build g++ python3 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY native ./native
COPY cmake ./cmake
COPY CMakeLists.txt binding.gyp tsconfig.json ./
COPY src ./src
COPY models ./models
COPY bench ./bench
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/build/Release ./build/Release
COPY --from=build /app/dist ./dist
COPY --from=build /app/models/generated/tiny ./models/generated/tiny
USER node
EXPOSE 8000
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
