# The seed's Step 1 model spelled with tf.keras, layers in a Sequential list.
import tensorflow as tf

baseline_model = tf.keras.Sequential([
    tf.keras.Input(shape=(16,)),
    tf.keras.layers.Dense(64, name="fc1", activation=tf.nn.relu),  # activation as a callable
    tf.keras.layers.Dense(32, name="fc2", activation="relu"),
    tf.keras.layers.Dense(32, name="fc3", activation="relu"),
    tf.keras.layers.Dense(5, name="output", activation="softmax"),
])
